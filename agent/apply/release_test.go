package apply

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-ops/cairn/internal/manifest"
	"github.com/cairn-ops/cairn/internal/release"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// signed returns a bundle of m signed with a fresh key and approved.
func signed(t *testing.T, m *manifest.Manifest) (*release.Bundle, release.Keys) {
	t.Helper()
	canon, err := m.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &release.Bundle{Name: m.Name, Version: m.Version, ManifestCanonical: canon, ApprovalsRequired: 1, State: release.StateApproved}
	for _, c := range m.Components {
		digest := c.SHA256
		if c.Digest != "" {
			digest = c.Digest
		}
		b.Components = append(b.Components, release.Component{Name: c.Name, Digest: digest})
	}
	release.Sign(b, priv)
	b.Approvals = []release.Approval{{By: "alice", ReleaseDigest: b.Digest}}
	return b, release.SingleKey(pub)
}

func TestRunVerifiesRelease(t *testing.T) {
	const good = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" // sha256("test")
	body := "components:\n  - {name: site, kind: application, path: site.tar.gz, sha256: " + good + "}\nsteps:\n  - {name: a, plugin: once}\n"
	tests := []struct {
		name   string
		change func(t *testing.T, e *env, b *release.Bundle) *manifest.Manifest
		want   error
		says   string
	}{
		{name: "signature", want: release.ErrUnsigned, says: "not signed", change: func(_ *testing.T, e *env, b *release.Bundle) *manifest.Manifest {
			b.Signature[0] ^= 1
			return nil
		}},
		{name: "approval record", want: release.ErrNotApproved, says: "bound to another digest", change: func(_ *testing.T, e *env, b *release.Bundle) *manifest.Manifest {
			b.Approvals[0].ReleaseDigest = strings.Repeat("0", 64)
			return nil
		}},
		{name: "swapped artifact", want: release.ErrArtifact, says: "component site", change: func(t *testing.T, e *env, _ *release.Bundle) *manifest.Manifest {
			if err := os.WriteFile(filepath.Join(e.dir, "site.tar.gz"), []byte("evil"), 0o644); err != nil {
				t.Fatal(err)
			}
			return nil
		}},
		{name: "other manifest", want: release.ErrTampered, says: "is not the manifest of release shop@1.0.0", change: func(t *testing.T, e *env, _ *release.Bundle) *manifest.Manifest {
			return e.manifest(t, body+"  - {name: b, plugin: once}\n")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if err := os.WriteFile(filepath.Join(e.dir, "site.tar.gz"), []byte("test"), 0o644); err != nil {
				t.Fatal(err)
			}
			m := e.manifest(t, body)
			b, pub := signed(t, m)
			e.runner.Bundle, e.runner.ReleaseKeys = b, pub
			if other := tt.change(t, e, b); other != nil {
				m = other
			}
			rep, err := e.runner.Run(t.Context(), m)
			if !errors.Is(err, ErrUnverified) || !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("Run = %v, want ErrUnverified and %v saying %q", err, tt.want, tt.says)
			}
			if len(rep.Steps) != 0 || rep.State != agentv1.StateFailed {
				t.Errorf("report: state %s, steps %v", rep.State, outcomes(rep))
			}
			if calls := e.host.plugins["once"].Calls(); len(calls) != 0 {
				t.Errorf("plugin was called: %v", calls)
			}
			ds, err := e.runner.Journal.Deployments(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 0 {
				t.Errorf("journal has deployments: %+v", ds)
			}
			if entries, _ := os.ReadDir(e.runner.Root); len(entries) != 0 {
				t.Errorf("root was written: %v", entries)
			}
		})
	}

	t.Run("valid", func(t *testing.T) {
		e := newEnv(t)
		if err := os.WriteFile(filepath.Join(e.dir, "site.tar.gz"), []byte("test"), 0o644); err != nil {
			t.Fatal(err)
		}
		m := e.manifest(t, body)
		e.runner.Bundle, e.runner.ReleaseKeys = signed(t, m)
		rep, err := e.runner.Run(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		if rep.State != agentv1.StateSucceeded || len(rep.Steps) != 1 {
			t.Errorf("report: state %s, steps %v", rep.State, outcomes(rep))
		}
	})
}
