package release

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/internal/manifest"
)

var exampleDir = filepath.Join("..", "..", "examples", "sandbox-release")

// signedExample returns the example release signed with a fresh key and
// approved once, with its artifacts' local paths.
func signedExample(t *testing.T) (*Bundle, ed25519.PublicKey, ed25519.PrivateKey, map[string]string) {
	t.Helper()
	m, err := manifest.Load(filepath.Join(exampleDir, "release.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	canon, err := m.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &Bundle{Name: m.Name, Version: m.Version, ManifestCanonical: canon, ApprovalsRequired: 1, State: StateApproved}
	arts := map[string]string{}
	for _, c := range m.Components {
		b.Components = append(b.Components, Component{Name: c.Name, Digest: c.SHA256})
		arts[c.Name] = filepath.Join(exampleDir, c.Path)
	}
	Sign(b, priv)
	b.Approvals = []Approval{{By: "alice", At: "2026-11-26T12:00:00Z", ReleaseDigest: b.Digest}}
	return b, pub, priv, arts
}

func TestDigestIsOrderIndependentAndFixed(t *testing.T) {
	a := Digest([]byte(`{"x":1}`), []Component{{"b", "2"}, {"a", "1"}})
	b := Digest([]byte(`{"x":1}`), []Component{{"a", "1"}, {"b", "2"}})
	if a != b {
		t.Errorf("component order changes the digest: %s vs %s", a, b)
	}
	sum := sha256.Sum256([]byte("{\"x\":1}\na=1\nb=2\n"))
	if want := hex.EncodeToString(sum[:]); a != want {
		t.Errorf("Digest = %s, want sha256 of canonical+newline+sorted lines (%s)", a, want)
	}
}

func TestVerify(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	otherPub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "site.tar.gz")
	if err := os.WriteFile(other, []byte("not the site"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(b *Bundle, pub *Keys, arts map[string]string)
		want   error
		says   string
	}{
		{name: "valid", change: func(*Bundle, *Keys, map[string]string) {}},
		{name: "two approvals of one required", change: func(b *Bundle, _ *Keys, _ map[string]string) {
			b.Approvals = append(b.Approvals, Approval{By: "bob", ReleaseDigest: b.Digest})
		}},
		{name: "state with proto prefix", change: func(b *Bundle, _ *Keys, _ map[string]string) { b.State = "STATE_APPROVED" }},
		{name: "manifest canonical bytes changed", change: func(b *Bundle, _ *Keys, _ map[string]string) {
			b.ManifestCanonical = []byte(strings.Replace(string(b.ManifestCanonical), "listen = 8080", "listen = 9090", 1))
		}, want: ErrTampered, says: "manifest or the component list changed"},
		{name: "component digest changed", change: func(b *Bundle, _ *Keys, _ map[string]string) {
			b.Components[1].Digest = strings.Repeat("0", 64)
		}, want: ErrTampered, says: "hash to"},
		{name: "component removed", change: func(b *Bundle, _ *Keys, _ map[string]string) {
			b.Components = b.Components[:1]
		}, want: ErrTampered, says: "component list changed"},
		{name: "digest rewritten to match tampering", change: func(b *Bundle, _ *Keys, _ map[string]string) {
			b.Components = b.Components[:1]
			b.Digest = Digest(b.ManifestCanonical, b.Components)
			b.Approvals[0].ReleaseDigest = b.Digest
		}, want: ErrUnsigned, says: "not signed by the controller's release key"},
		{name: "wrong key", change: func(_ *Bundle, keys *Keys, _ map[string]string) { *keys = SingleKey(otherPub) },
			want: ErrUnsigned, says: "not signed by the controller's release key (" + KeyID(otherPub) + ")"},
		{name: "signed by the old key during the overlap", change: func(_ *Bundle, keys *Keys, _ map[string]string) {
			*keys = Keys{{Public: (*keys)[0].Public, RetiresAt: now.Add(time.Hour)}, {Public: otherPub}}
		}},
		{name: "signed by the old key after the overlap", change: func(_ *Bundle, keys *Keys, _ map[string]string) {
			*keys = Keys{{Public: (*keys)[0].Public, RetiresAt: now}, {Public: otherPub}}
		}, want: ErrKeyRetired, says: "which retired at 2026-05-01T12:00:00Z when the controller's signing key was rotated"},
		{name: "no keys", change: func(_ *Bundle, keys *Keys, _ map[string]string) { *keys = nil },
			want: ErrUnsigned, says: "no release key to check digest"},
		{name: "a key of the wrong size", change: func(_ *Bundle, keys *Keys, _ map[string]string) { *keys = Keys{{Public: []byte{1, 2, 3}}} },
			want: ErrUnsigned, says: "a release public key has 3 bytes, want 32"},
		{name: "no signature", change: func(b *Bundle, _ *Keys, _ map[string]string) { b.Signature = nil },
			want: ErrUnsigned, says: "no signature"},
		{name: "not approved state", change: func(b *Bundle, _ *Keys, _ map[string]string) { b.State = "TESTED" },
			want: ErrNotApproved, says: "state is TESTED"},
		{name: "no approvals", change: func(b *Bundle, _ *Keys, _ map[string]string) { b.Approvals = nil },
			want: ErrNotApproved, says: "0 distinct approval(s)"},
		{name: "insufficient distinct approvals", change: func(b *Bundle, _ *Keys, _ map[string]string) {
			b.ApprovalsRequired = 2
			b.Approvals = append(b.Approvals, Approval{By: "alice", ReleaseDigest: b.Digest})
		}, want: ErrNotApproved, says: "1 distinct approval(s)"},
		{name: "approvals required lowered below the manifest's", change: func(b *Bundle, _ *Keys, _ map[string]string) {
			b.ApprovalsRequired = 0
			b.Approvals = nil
		}, want: ErrNotApproved, says: "1 required"},
		{name: "approval bound to another digest", change: func(b *Bundle, _ *Keys, _ map[string]string) {
			b.Approvals[0].ReleaseDigest = strings.Repeat("a", 64)
		}, want: ErrNotApproved, says: "approvals by alice are bound to another digest"},
		{name: "swapped artifact", change: func(_ *Bundle, _ *Keys, arts map[string]string) { arts["site"] = other },
			want: ErrArtifact, says: "component site: sha256 of " + other},
		{name: "missing artifact file", change: func(_ *Bundle, _ *Keys, arts map[string]string) { delete(arts, "assets") },
			want: ErrArtifact, says: "component assets has no local file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, pub, _, arts := signedExample(t)
			keys := SingleKey(pub)
			tt.change(b, &keys, arts)
			err := Verify(b, keys, now, arts)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("Verify = %q, want it to say %q", err, tt.says)
			}
		})
	}
}

func TestBundleJSONRoundTrip(t *testing.T) {
	b, pub, _, arts := signedExample(t)
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var got Bundle
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*b, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if err := Verify(&got, SingleKey(pub), time.Now(), arts); err != nil {
		t.Errorf("Verify after round trip: %v", err)
	}
}

func TestPublicKeys(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := PublicKey(pub)
	if err != nil || !got.Equal(pub) {
		t.Errorf("PublicKey = %x, %v", got, err)
	}
	if _, err := PublicKey(pub[:10]); err == nil {
		t.Error("PublicKey of 10 bytes: no error")
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	got, err = ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil || !got.Equal(pub) {
		t.Errorf("ParsePublicKeyPEM = %x, %v", got, err)
	}
	if _, err := ParsePublicKeyPEM([]byte("garbage")); err == nil {
		t.Error("ParsePublicKeyPEM of garbage: no error")
	}
}
