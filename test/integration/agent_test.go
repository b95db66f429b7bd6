package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	hwFixtures = "agent/collector/testdata/hw"
	swFixture  = "agent/collector/testdata/sw/debian-a"
)

var allSections = []string{
	"hardware.cpu", "hardware.memory", "hardware.block", "hardware.network", "hardware.pci",
	"hardware.gpu", "hardware.dmi", "os", "packages", "services", "files", "kernel_modules", "volatile",
}

// writeAudit audits root and writes the JSON document to a file.
func writeAudit(t *testing.T, root, name string, extra ...string) string {
	t.Helper()
	r := agent(t, append([]string{"audit", "--root", root, "-o", "json"}, extra...)...)
	if r.code != 0 {
		t.Fatalf("audit --root %s: exit %d\n%s", root, r.code, r.stderr)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAuditHostShowsEverySection(t *testing.T) {
	r := agent(t, "audit", "-o", "text")
	if r.code != 0 {
		t.Fatalf("audit exit %d: %s", r.code, r.stderr)
	}
	for _, s := range allSections {
		if !strings.Contains(r.stdout, "\n["+s+"]\n") {
			t.Errorf("text audit of this host has no [%s] section", s)
		}
	}
	if !regexp.MustCompile(`collectors: 13 ok, 0 failed`).MatchString(r.stdout) {
		t.Errorf("want every collector ok on this host, got:\n%s", head(r.stdout, 30))
	}
}

func TestAuditOutputFormats(t *testing.T) {
	root := composeRoot(t, swFixture, hwFixtures+"/host-a.tar.gz")
	for _, format := range []string{"json", "yaml", "text"} {
		r := agent(t, "audit", "--root", root, "-o", format)
		if r.code != 0 || !strings.Contains(r.stdout, "schema_version") && format != "text" {
			t.Errorf("-o %s: exit %d, stderr %q", format, r.code, r.stderr)
		}
	}
	r := agent(t, "audit", "--root", root, "-o", "xml")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown output format "xml"`) {
		t.Errorf("-o xml: exit %d, stderr %q; want exit 2 and a clear error", r.code, r.stderr)
	}
	r = agent(t, "audit", "--root", root, "--collectors", "cpu,disks")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown collector "disks"`) {
		t.Errorf("--collectors disks: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestAuditIsCanonical audits the same fixture twice: apart from when it
// was taken and how long each collector took, the documents are
// byte-identical, and so are their content hashes.
func TestAuditIsCanonical(t *testing.T) {
	root := composeRoot(t, swFixture, hwFixtures+"/host-a.tar.gz")
	strip := regexp.MustCompile(`(?m)^\s*"(collected_at|duration_ms|duration_us|document)": .*$`)
	var docs []string
	var content []string
	for i := 0; i < 2; i++ {
		r := agent(t, "audit", "--root", root, "-o", "json", "--track", "/etc")
		if r.code != 0 {
			t.Fatalf("audit: %s", r.stderr)
		}
		var doc struct {
			Hashes struct{ Content string } `json:"hashes"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatal(err)
		}
		content = append(content, doc.Hashes.Content)
		docs = append(docs, strip.ReplaceAllString(r.stdout, ""))
	}
	if content[0] == "" || content[0] != content[1] {
		t.Errorf("content hashes differ: %q vs %q", content[0], content[1])
	}
	if diff := cmp.Diff(docs[0], docs[1]); diff != "" {
		t.Errorf("two audits of the same tree differ (-first +second):\n%s", diff)
	}

	// Taken at different times, they still diff to nothing.
	first := writeAudit(t, root, "first.json")
	second := writeAudit(t, root, "second.json")
	if r := agent(t, "diff", first, second); r.code != 0 || !strings.HasPrefix(r.stdout, "no changes\n") {
		t.Errorf("diff of two audits of an unchanged tree: exit %d, output %q", r.code, r.stdout)
	}
}

// TestHardwareChangeDiff audits two fixture hosts with the same software
// whose hardware differs by one memory module added and one disk replaced,
// and checks the diff reports exactly that.
func TestHardwareChangeDiff(t *testing.T) {
	before := writeAudit(t, composeRoot(t, swFixture, hwFixtures+"/host-a.tar.gz"), "a.json")
	after := writeAudit(t, composeRoot(t, swFixture, hwFixtures+"/host-b.tar.gz"), "b.json")

	r := agent(t, "diff", "-o", "json", before, after)
	if r.code != 1 {
		t.Fatalf("diff exit %d, want 1 (changes); stderr %s", r.code, r.stderr)
	}
	var rep struct {
		Summary  string `json:"summary"`
		Sections []struct {
			Name       string            `json:"name"`
			Comparable bool              `json:"comparable"`
			Changes    []json.RawMessage `json:"changes"`
		} `json:"sections"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("diff -o json: %v\n%s", err, r.stdout)
	}
	changed := map[string]int{}
	for _, s := range rep.Sections {
		if !s.Comparable {
			t.Errorf("section %s not comparable", s.Name)
		}
		if len(s.Changes) > 0 {
			changed[s.Name] = len(s.Changes)
		}
	}
	if diff := cmp.Diff(map[string]int{"hardware.memory": 2, "hardware.block": 1}, changed); diff != "" {
		t.Errorf("changed sections (-want +got):\n%s\n%s", diff, r.stdout)
	}
	for _, want := range []string{"1 memory module added", "1 disk replaced"} {
		if !strings.Contains(rep.Summary, want) {
			t.Errorf("summary %q lacks %q", rep.Summary, want)
		}
	}

	text := agent(t, "diff", before, after)
	if text.code != 1 || !strings.HasPrefix(text.stdout, rep.Summary+"\n") {
		t.Errorf("text diff: exit %d, want the summary first:\n%s", text.code, text.stdout)
	}
	md := agent(t, "diff", "-o", "markdown", before, after)
	if md.code != 1 || !strings.Contains(md.stdout, "hardware.block") {
		t.Errorf("markdown diff: exit %d:\n%s", md.code, md.stdout)
	}
}

func TestDiffExitCodesAndBadInput(t *testing.T) {
	good := writeAudit(t, composeRoot(t, swFixture, hwFixtures+"/host-a.tar.gz"), "good.json")
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	doc := string(data)
	tampered := regexp.MustCompile(`"hostname": "[^"]*"`).ReplaceAllString(doc, `"hostname": "intruder"`)
	if tampered == doc {
		t.Fatal("fixture audit has no hostname to tamper with")
	}
	tests := []struct {
		name     string
		after    string
		wantCode int
		wantErr  string
	}{
		{"same audit", good, 0, ""},
		{"tampered", write("tampered.json", tampered), 2, "hash mismatch"},
		{"truncated", write("truncated.json", doc[:len(doc)/3]), 2, "truncated JSON"},
		{"not json", write("notjson.json", "hello\n"), 2, "not valid JSON at line 1, column 1"},
		{"wrong schema", write("v9.json", strings.Replace(doc, `"schema_version": 1`, `"schema_version": 9`, 1)), 2, "schema_version is 9"},
		{"missing", filepath.Join(dir, "missing.json"), 2, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := agent(t, "diff", good, tt.after)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			if tt.wantErr == "" {
				if !strings.HasPrefix(r.stdout, "no changes\n") {
					t.Errorf("stdout %q, want it to start with \"no changes\"", r.stdout)
				}
				return
			}
			if lines := strings.Count(strings.TrimRight(r.stderr, "\n"), "\n") + 1; lines != 1 {
				t.Errorf("want a one-line error, got %d lines:\n%s", lines, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.after) || !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("stderr %q should name %s and say %q", r.stderr, tt.after, tt.wantErr)
			}
		})
	}
}

// TestFailedCollectorIsNotComparable: an audit whose collectors all timed
// out must diff as "not comparable", never as everything removed.
func TestFailedCollectorIsNotComparable(t *testing.T) {
	root := composeRoot(t, swFixture, hwFixtures+"/host-a.tar.gz")
	good := writeAudit(t, root, "good.json")
	r := agent(t, "audit", "--root", root, "--timeout", "1ns")
	if r.code != 1 || !strings.Contains(r.stderr, "no collector succeeded") {
		t.Fatalf("audit where every collector timed out: exit %d, want 1 and a clear error; stderr %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "cairn-agent: warning: collector failed: collector=block") {
		t.Errorf("stderr should report each failed collector: %q", r.stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	d := agent(t, "diff", "-o", "json", good, bad)
	if d.code != 1 {
		t.Errorf("diff against an audit with only failed collectors: exit %d, want 1 (cannot be shown unchanged)\n%s", d.code, d.stdout)
	}
	if strings.Contains(d.stdout, `"op": "removed"`) {
		t.Errorf("failed collectors read as removals:\n%s", d.stdout)
	}
	if !strings.Contains(d.stdout, "not comparable") {
		t.Errorf("diff should say the sections are not comparable:\n%s", d.stdout)
	}
}

func head(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
