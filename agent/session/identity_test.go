package session

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/internal/pki"
)

func TestIdentitySaveLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadIdentity(dir); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("empty dir: %v, want ErrNotEnrolled", err)
	}
	want := &Identity{NodeID: "n-1", Controller: "ctl:7443", ReleasePublicKey: []byte{1, 2, 3}, EnrolledAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := SaveIdentity(dir, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("identity.json mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("identity (-want +got):\n%s", diff)
	}

	for name, content := range map[string]string{
		"not json":        "{",
		"missing node id": `{"controller":"ctl:7443"}`,
	} {
		t.Run(name, func(t *testing.T) {
			d := t.TempDir()
			os.WriteFile(filepath.Join(d, IdentityFile), []byte(content), 0o600)
			if _, err := LoadIdentity(d); err == nil || errors.Is(err, ErrNotEnrolled) {
				t.Errorf("err = %v, want a read error", err)
			}
		})
	}
}

// TestRenewalCrashRecovery leaves the data dir as a crash at each point
// of saveNew would, and checks LoadCredentials finds a matching pair.
func TestRenewalCrashRecovery(t *testing.T) {
	ca, err := pki.NewCA("test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair := func() (keyPEM, certPEM []byte, serial string) {
		key, _ := pki.NewKey()
		csr, _ := pki.NewCSR(key, "n")
		der, err := ca.SignNode(csr, "n-1", time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		keyPEM, _ = pki.EncodeKey(key)
		c, _ := x509.ParseCertificate(der)
		return keyPEM, pki.EncodeCert(der), pki.SerialHex(c)
	}
	oldKey, oldCert, oldSerial := pair()
	newKey, newCert, newSerial := pair()

	tests := []struct {
		name  string
		files map[string][]byte
		want  string
	}{
		{"no renewal", map[string][]byte{KeyFile: oldKey, CertFile: oldCert}, oldSerial},
		{"crash after the pending key", map[string][]byte{KeyFile: oldKey, CertFile: oldCert, KeyFile + pendingSuffix: newKey}, oldSerial},
		{"crash after both pending files", map[string][]byte{KeyFile: oldKey, CertFile: oldCert, KeyFile + pendingSuffix: newKey, CertFile + pendingSuffix: newCert}, newSerial},
		{"crash after the key rename", map[string][]byte{KeyFile: newKey, CertFile: oldCert, CertFile + pendingSuffix: newCert}, newSerial},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.files[CAFile] = ca.CertPEM
			for name, data := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			creds, err := LoadCredentials(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := pki.SerialHex(creds.Leaf); got != tt.want {
				t.Errorf("serial %s, want %s", got, tt.want)
			}
			entries, _ := os.ReadDir(dir)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if diff := cmp.Diff([]string{CAFile, KeyFile, CertFile}, names); diff != "" {
				t.Errorf("files left (-want +got):\n%s", diff)
			}
		})
	}
}
