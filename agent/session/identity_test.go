package session

import (
	"crypto/x509"
	"errors"
	"fmt"
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

func TestStateBoundsAndAck(t *testing.T) {
	dir := t.TempDir()
	st, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxCompleted + 5 {
		if err := st.complete(result{CommandID: fmt.Sprintf("c%d", i), OK: true}); err != nil {
			t.Fatal(err)
		}
	}
	// maxOutbox (1000) results fit; the oldest five were dropped, and
	// said so once.
	want := []string{"c0", "c1", "c2", "c3", "c4"}
	if diff := cmp.Diff(want, st.takeDropped()); diff != "" {
		t.Errorf("dropped results (-want +got):\n%s", diff)
	}
	if got := st.takeDropped(); len(got) != 0 {
		t.Errorf("dropped results reported twice: %v", got)
	}
	if found, err := st.ack("c6"); !found || err != nil {
		t.Fatalf("ack(c6) = %v, %v", found, err)
	}
	if found, err := st.ack("never"); found || err != nil {
		t.Fatalf("ack(never) = %v, %v", found, err)
	}
	if err := st.complete(result{CommandID: "last", Error: "boom"}); err != nil {
		t.Fatal(err)
	}

	again, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(again.disk.Completed); n != maxCompleted {
		t.Errorf("%d completed IDs kept, want %d", n, maxCompleted)
	}
	tests := []struct {
		id         string
		wantDone   bool
		wantResult *result
	}{
		{"c0", false, nil}, // pushed out by newer ones
		{"c5", false, nil},
		{"c6", true, nil}, // acknowledged
		{"c7", true, &result{CommandID: "c7", OK: true}},
		{"last", true, &result{CommandID: "last", Error: "boom"}},
		{"never", false, nil},
	}
	for _, tt := range tests {
		done, r := again.done(tt.id)
		if done != tt.wantDone || !cmp.Equal(tt.wantResult, r) {
			t.Errorf("done(%s) = %v, %+v; want %v, %+v", tt.id, done, r, tt.wantDone, tt.wantResult)
		}
	}
	if got := again.recent(2); !cmp.Equal([]string{fmt.Sprintf("c%d", maxCompleted+4), "last"}, got) {
		t.Errorf("recent(2) = %v", got)
	}
	fi, err := os.Stat(filepath.Join(dir, StateFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state.json: %v, %v; want mode 0600", fi.Mode(), err)
	}
}
