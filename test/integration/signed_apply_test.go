package integration

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-ops/cairn/internal/manifest"
	"github.com/cairn-ops/cairn/internal/release"
)

// TestApplySignedRelease applies examples/sandbox-release with a signed,
// approved bundle and the controller's release key (PEM): it runs; with
// site.tar.gz swapped for other bytes (the manifest kept) it refuses
// with exit 1, naming the artifact, and runs nothing.
func TestApplySignedRelease(t *testing.T) {
	src := filepath.Join(repoRoot(), "examples", "sandbox-release")
	m, err := manifest.Load(filepath.Join(src, "release.yaml"))
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
	b := &release.Bundle{Name: m.Name, Version: m.Version, ManifestCanonical: canon, ApprovalsRequired: m.Approvals.Required, State: release.StateApproved}
	for _, c := range m.Components {
		b.Components = append(b.Components, release.Component{Name: c.Name, Digest: c.SHA256})
	}
	release.Sign(b, priv)
	b.Approvals = []release.Approval{{By: "alice", At: "2026-11-26T12:00:00Z", ReleaseDigest: b.Digest}}

	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle.json")
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "release.pub.pem")
	for path, data := range map[string][]byte{bundle: data, key: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("valid", func(t *testing.T) {
		root := t.TempDir()
		r := agent(t, "apply", "-f", filepath.Join(src, "release.yaml"), "--root", root, "--data-dir", t.TempDir(),
			"--bundle", bundle, "--release-key", key, "-o", "json")
		if r.code != 0 {
			t.Fatalf("apply: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if rep, _ := outcomesOf(t, r.stdout); rep.State != "succeeded" {
			t.Errorf("state = %s", rep.State)
		}
	})

	t.Run("swapped artifact", func(t *testing.T) {
		copied := t.TempDir()
		for _, f := range []string{"release.yaml", "webshop-assets_1.0.0_all.deb"} {
			data, err := os.ReadFile(filepath.Join(src, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(copied, f), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(copied, "site.tar.gz"), []byte("not the site"), 0o644); err != nil {
			t.Fatal(err)
		}
		root, data := t.TempDir(), t.TempDir()
		r := agent(t, "apply", "-f", filepath.Join(copied, "release.yaml"), "--root", root, "--data-dir", data,
			"--bundle", bundle, "--release-key", key)
		if r.code != 1 || !strings.Contains(r.stderr, "release does not verify") || !strings.Contains(r.stderr, "component site") {
			t.Fatalf("apply with a swapped artifact: exit %d, want 1 naming component site\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if entries, _ := os.ReadDir(root); len(entries) != 0 {
			t.Errorf("the root was written: %v", entries)
		}
		if r := agent(t, "journal", "list", "--data-dir", data); strings.Contains(r.stdout, "webshop@1.0.0") {
			t.Errorf("the refused release was journaled:\n%s", r.stdout)
		}
	})
}
