package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// sample returns a small sealed audit.
func sample(t testing.TB) *inventoryv1.Audit {
	t.Helper()
	ok := inventoryv1.CollectorStatus_STATE_OK
	a := &inventoryv1.Audit{
		SchemaVersion: SchemaVersion,
		Header:        &inventoryv1.Header{AgentVersion: "test", Root: "/", CollectedAt: "2026-11-26T12:00:00Z"},
		Os:            &inventoryv1.OS{Hostname: "web1", Id: "debian", VersionId: "12"},
		Packages: &inventoryv1.Packages{Managers: []string{"dpkg"}, Packages: []*inventoryv1.Package{
			{Key: "dpkg/jq/amd64", Manager: "dpkg", Name: "jq", Version: "1.6-2.1", Architecture: "amd64"},
			{Key: "dpkg/openssl/amd64", Manager: "dpkg", Name: "openssl", Version: "3.0.11-1", Architecture: "amd64"},
		}},
		Volatile: &inventoryv1.Volatile{UptimeSeconds: 12.5, Load1: 0.25},
		Collectors: []*inventoryv1.CollectorStatus{
			{Name: "os", Section: "os", State: ok},
			{Name: "packages", Section: "packages", State: ok},
			{Name: "volatile", Section: "volatile", State: ok},
		},
	}
	if err := Seal(a); err != nil {
		t.Fatal(err)
	}
	return a
}

func encode(t testing.TB, a *inventoryv1.Audit) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteJSON(&buf, a); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	a := sample(t)
	got, err := Decode(encode(t, a))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, got, protocmp.Transform()); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
}

func TestSealHashes(t *testing.T) {
	a := sample(t)
	h := a.GetHashes()
	if got, want := len(h.GetSections()), 2; got != want {
		t.Errorf("got %d section hashes (%v), want %d: os and packages, volatile excluded", got, h.GetSections(), want)
	}
	if _, ok := h.GetSections()["volatile"]; ok {
		t.Error("volatile section must not be hashed into the content")
	}

	// Volatile facts and the header change the document hash but not the content hash.
	b := proto.Clone(a).(*inventoryv1.Audit)
	b.Volatile.UptimeSeconds = 99
	b.Header.CollectedAt = "2026-11-27T00:00:00Z"
	if err := Seal(b); err != nil {
		t.Fatal(err)
	}
	if b.Hashes.Content != a.Hashes.Content {
		t.Error("content hash changed with volatile facts")
	}
	if b.Hashes.Document == a.Hashes.Document {
		t.Error("document hash did not change with volatile facts")
	}

	// Content changes the content hash and that section's hash only.
	c := proto.Clone(a).(*inventoryv1.Audit)
	c.Packages.Packages[0].Version = "1.7-1"
	if err := Seal(c); err != nil {
		t.Fatal(err)
	}
	if c.Hashes.Content == a.Hashes.Content {
		t.Error("content hash did not change with a package version")
	}
	if c.Hashes.Sections["os"] != a.Hashes.Sections["os"] || c.Hashes.Sections["packages"] == a.Hashes.Sections["packages"] {
		t.Errorf("section hashes: want only packages to change, got %v vs %v", c.Hashes.Sections, a.Hashes.Sections)
	}
}

func TestDeterministicOutput(t *testing.T) {
	first := encode(t, sample(t))
	for i := 0; i < 20; i++ {
		if got := encode(t, sample(t)); !bytes.Equal(got, first) {
			t.Fatalf("encoding %d differs:\n%s\n---\n%s", i, got, first)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	valid := string(encode(t, sample(t)))
	tests := []struct {
		name    string
		doc     string
		wantErr error
		wantMsg string
	}{
		{"empty", "", ErrMalformed, "empty document"},
		{"whitespace", "  \n", ErrMalformed, "empty document"},
		{"truncated", valid[:len(valid)/2], ErrMalformed, "truncated JSON"},
		{"not json", "schema_version: 1\n", ErrMalformed, "line 1, column 1"},
		{"syntax error on line 3", "{\n\"schema_version\": 1,\n\"os\": {,}\n}", ErrMalformed, "line 3, column 8"},
		{"no schema version", `{"os":{"hostname":"x"}}`, ErrMalformed, "no schema_version"},
		{"wrong schema version", strings.Replace(valid, `"schema_version": 1`, `"schema_version": 2`, 1), ErrSchemaVersion, "schema_version is 2"},
		{"schema version of wrong type", strings.Replace(valid, `"schema_version": 1`, `"schema_version": "1"`, 1), ErrMalformed, "schema_version must be a whole number"},
		{"unknown field", strings.Replace(valid, `"schema_version": 1`, `"schema_version": 1, "colour": "red"`, 1), ErrMalformed, "colour"},
		{"tampered package version", strings.Replace(valid, `"3.0.11-1"`, `"3.0.13-1"`, 1), ErrTampered, "section packages"},
		{"tampered header", strings.Replace(valid, `"web1"`, `"web2"`, 1), ErrTampered, "section os"},
		{"tampered volatile", strings.Replace(valid, `"uptime_seconds": 12.5`, `"uptime_seconds": 13`, 1), ErrTampered, "document hashes"},
		{"hashes removed", withoutKey(t, valid, "hashes"), ErrTampered, "hashes missing"},
		{"section hash removed", strings.Replace(valid, `"os": "`, `"xos": "`, 1), ErrTampered, "section os"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.doc))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decode error = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
}

func TestVerifyMissingHashes(t *testing.T) {
	a := sample(t)
	a.Hashes = nil
	if err := Verify(a); !errors.Is(err, ErrTampered) {
		t.Fatalf("Verify without hashes = %v, want ErrTampered", err)
	}
}

func TestReadFileNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "before.json")
	if err := os.WriteFile(path, []byte(`{"schema_version": 1`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+": ") {
		t.Fatalf("ReadFile error = %v, want it to start with the path", err)
	}
}

func TestReadRefusesOversize(t *testing.T) {
	r := io.LimitReader(repeatReader('x'), 4096)
	if _, err := ReadLimit(r, 4095); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Read error = %v, want ErrTooLarge", err)
	}
}

func TestWriteYAML(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteYAML(&buf, sample(t)); err != nil {
		t.Fatal(err)
	}
	got := buf.String()
	for _, want := range []string{"schema_version: 1\n", "  hostname: web1\n", "      version: 3.0.11-1\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("yaml output lacks %q:\n%s", want, got)
		}
	}
}

func TestWriteText(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteText(&buf, sample(t), TextOptions{}); err != nil {
		t.Fatal(err)
	}
	got := buf.String()
	for _, want := range []string{
		"audit of / (host web1)",
		"collectors: 3 ok, 0 failed",
		"[packages]\n  managers=[dpkg]\n  packages (2)\n    dpkg/jq/amd64  manager=dpkg name=jq version=1.6-2.1 architecture=amd64\n",
		"[volatile]",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("text output lacks %q:\n%s", want, got)
		}
	}

	buf.Reset()
	if err := WriteText(&buf, sample(t), TextOptions{Summary: true}); err != nil {
		t.Fatal(err)
	}
	if want := "[packages] managers=[dpkg]  2 packages\n"; !strings.Contains(buf.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, buf.String())
	}
}

// repeatReader yields its byte forever.
type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// withoutKey returns doc with the top-level key removed.
func withoutKey(t *testing.T, doc, key string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	delete(m, key)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
