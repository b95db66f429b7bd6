package keyring

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/pki"
	"github.com/cairn-ops/cairn/internal/release"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// legacyDir is a data directory as cairn-controller init makes it: one
// CA with its server certificate, one release key.
func legacyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := Create(dir, []string{"localhost", "ctl.example.com"}, []net.IP{net.IPv4(127, 0, 0, 1)}, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func load(t *testing.T, dir string) *Keyring {
	t.Helper()
	k, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// bundle returns the serials of the certificates in dir/ca.pem.
func bundle(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, BundleFile))
	if err != nil {
		t.Fatal(err)
	}
	var serials []string
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return serials
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, pki.SerialHex(c))
	}
}

func files(t *testing.T, dir string) map[string]os.FileMode {
	t.Helper()
	out := map[string]os.FileMode{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[filepath.ToSlash(rel)] = fi.Mode().Perm()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRotateCA(t *testing.T) {
	dir := legacyDir(t)
	before := load(t, dir)
	old := before.CAs[0]
	if before.Generation != 0 || len(before.CAs) != 1 || before.IssuingCA() != old.CA {
		t.Fatalf("legacy keyring = %+v", before)
	}

	k, err := Rotate(dir, KindCA, Change{Now: t0, By: "root", Overlap: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(k.CAs) != 2 || k.Generation != 1 {
		t.Fatalf("after rotate: %d CAs, generation %d; want 2, 1", len(k.CAs), k.Generation)
	}
	oldCA, newCA := k.CAs[0], k.CAs[1]
	if !oldCA.Cert.Equal(old.Cert) || !oldCA.RetiresAt.Equal(t0.Add(time.Hour)) || !newCA.RetiresAt.IsZero() {
		t.Errorf("CAs = old %s retiring %v, new retiring %v; want the old one retiring in an hour", oldCA.Serial, oldCA.RetiresAt, newCA.RetiresAt)
	}
	if k.IssuingCA() != newCA.CA {
		t.Errorf("the new CA does not issue node certificates")
	}
	// Files: the legacy key files moved under keys/, ca.pem is a bundle.
	wantFiles := map[string]os.FileMode{
		File: 0o600, BundleFile: 0o644, ReleasePubFile: 0o644, lockFile: 0o600, Dir: 0o700,
	}
	for _, ca := range k.CAs {
		wantFiles[Dir+"/ca-"+ca.Serial+".pem"] = 0o644
		wantFiles[Dir+"/ca-"+ca.Serial+"-key.pem"] = 0o600
		wantFiles[Dir+"/server-"+ca.Serial+".pem"] = 0o644
		wantFiles[Dir+"/server-"+ca.Serial+"-key.pem"] = 0o600
	}
	wantFiles[Dir+"/release-"+k.ReleaseKeys[0].ID+".pem"] = 0o600
	if diff := cmp.Diff(wantFiles, files(t, dir)); diff != "" {
		t.Errorf("data dir files (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{oldCA.Serial, newCA.Serial}, bundle(t, dir)); diff != "" {
		t.Errorf("ca.pem during the overlap (-want +got):\n%s", diff)
	}

	// During the overlap the old CA's server certificate is presented and
	// both CAs are trusted; after it, only the new one.
	for _, tc := range []struct {
		name    string
		at      time.Time
		serving *CA
		trusted int
		retired bool
	}{
		{"overlap", t0.Add(59 * time.Minute), oldCA, 2, false},
		{"after", t0.Add(time.Hour), newCA, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := k.ServerCertificate(tc.at).Leaf; got.CheckSignatureFrom(tc.serving.Cert) != nil {
				t.Errorf("the server certificate presented is not %s's", tc.serving.Serial)
			}
			if got := len(k.Trust(tc.at).GetCas()); got != tc.trusted {
				t.Errorf("Trust lists %d CAs, want %d", got, tc.trusted)
			}
			if _, retired := k.Retired(oldCA.Cert, tc.at); retired != tc.retired {
				t.Errorf("Retired(old) = %v, want %v", retired, tc.retired)
			}
			if _, retired := k.Retired(newCA.Cert, tc.at); retired {
				t.Errorf("the new CA is retired")
			}
		})
	}
	// The new server certificate names what the old one named.
	leaf := newCA.Server.Leaf
	if !slices.Equal(leaf.DNSNames, []string{"localhost", "ctl.example.com"}) || len(leaf.IPAddresses) != 1 {
		t.Errorf("new server certificate names %v %v, want the old one's", leaf.DNSNames, leaf.IPAddresses)
	}
	if diff := cmp.Diff([]Event{{Generation: 1, At: t0, By: "root", Action: "ca.rotate", Details: map[string]string{
		"ca_serial": newCA.Serial, "retiring": oldCA.Serial, "overlap_ends": "2026-05-01T13:00:00.000000000Z"}}}, k.Events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// Finishing ends the overlap now; there is then nothing to finish.
	k, err = Finish(dir, KindCA, Change{Now: t0.Add(time.Minute), By: "root"})
	if err != nil {
		t.Fatal(err)
	}
	if !k.CAs[0].RetiresAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("after Finish the old CA retires at %v", k.CAs[0].RetiresAt)
	}
	if diff := cmp.Diff([]string{newCA.Serial}, bundle(t, dir)); diff != "" {
		t.Errorf("ca.pem after the overlap (-want +got):\n%s", diff)
	}
	if _, err := Finish(dir, KindCA, Change{Now: t0.Add(2 * time.Minute), By: "root"}); !errors.Is(err, ErrNoRotation) {
		t.Errorf("Finish with nothing retiring = %v, want ErrNoRotation", err)
	}
}

func TestRotateSigningKey(t *testing.T) {
	dir := legacyDir(t)
	old := load(t, dir).SigningKey()
	k, err := Rotate(dir, KindSigningKey, Change{Now: t0, By: "ops", Overlap: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if k.SigningKey().Equal(old) {
		t.Fatal("the signing key did not change")
	}
	keys := k.PublicKeys()
	if len(keys) != 2 || !keys[0].Public.Equal(old.Public()) || !keys[0].RetiresAt.Equal(t0.Add(24*time.Hour)) || !keys[1].RetiresAt.IsZero() {
		t.Errorf("PublicKeys = %+v, want the old key retiring in a day, then the new", keys)
	}
	pub, err := os.ReadFile(filepath.Join(dir, ReleasePubFile))
	if err != nil {
		t.Fatal(err)
	}
	got, err := release.ParsePublicKeyPEM(pub)
	if err != nil || !got.Equal(k.SigningKey().Public()) {
		t.Errorf("release.pub.pem = %x, %v; want the new public key", got, err)
	}
	// A release signed with the old key verifies during the overlap, not
	// after.
	sig := ed25519.Sign(old, []byte("digest"))
	if err := keys.CheckSignature("digest", sig, t0.Add(time.Hour)); err != nil {
		t.Errorf("old signature during the overlap: %v", err)
	}
	if err := keys.CheckSignature("digest", sig, t0.Add(24*time.Hour)); !errors.Is(err, release.ErrKeyRetired) {
		t.Errorf("old signature after the overlap: %v, want ErrKeyRetired", err)
	}
	// The CA is untouched.
	if len(k.CAs) != 1 || !k.CAs[0].RetiresAt.IsZero() {
		t.Errorf("rotating the signing key changed the CAs: %+v", k.CAs)
	}
	// A second rotation keeps the first key's earlier end.
	k, err = Rotate(dir, KindSigningKey, Change{Now: t0.Add(time.Hour), By: "ops", Overlap: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var ends []time.Time
	for _, rk := range k.ReleaseKeys {
		ends = append(ends, rk.RetiresAt)
	}
	if diff := cmp.Diff([]time.Time{t0.Add(24 * time.Hour), t0.Add(49 * time.Hour), {}}, ends); diff != "" {
		t.Errorf("retirements after two rotations (-want +got):\n%s", diff)
	}
}

func TestRotateRefuses(t *testing.T) {
	dir := legacyDir(t)
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"overlap too short", func() error {
			_, err := Rotate(dir, KindCA, Change{Now: t0, Overlap: time.Second})
			return err
		}, "overlap 1s: give between 1m0s and 9600h0m0s"},
		{"overlap too long", func() error {
			_, err := Rotate(dir, KindCA, Change{Now: t0, Overlap: 401 * 24 * time.Hour})
			return err
		}, "overlap 9624h0m0s"},
		{"unknown kind", func() error {
			_, err := Rotate(dir, "server", Change{Now: t0, Overlap: time.Hour})
			return err
		}, `unknown rotation "server"`},
		{"finish with no rotation", func() error {
			_, err := Finish(dir, KindSigningKey, Change{Now: t0})
			return err
		}, "no rotation in its overlap: no signing-key is retiring"},
		{"a rotation already running", func() error {
			unlock, err := lock(filepath.Join(dir, lockFile))
			if err != nil {
				return err
			}
			defer unlock()
			_, err = Rotate(dir, KindCA, Change{Now: t0, Overlap: time.Hour})
			return err
		}, "another cairn-controller rotate holds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// Nothing was rotated.
	if _, err := os.Stat(filepath.Join(dir, File)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused rotation wrote %s: %v", File, err)
	}
}

// TestRotationDiesBeforeCommit: a rotation that wrote its new key files
// but died before keys.json leaves the keyring as it was, and can be run
// again.
func TestRotationDiesBeforeCommit(t *testing.T) {
	dir := legacyDir(t)
	before := load(t, dir)
	// What change does up to the commit: the legacy files copied under
	// keys/, a new CA and a new release key written.
	f, err := current(dir, before)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := addCA(dir, f, before, t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := addReleaseKey(dir, f, t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	l, err := Open(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Keyring().Equal(before) {
		t.Errorf("a rotation that died before its commit changed the keyring")
	}
	for _, name := range []string{LegacyCAKey, LegacyServerCert, LegacyServerKey, LegacyReleaseKey} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	k, err := Rotate(dir, KindCA, Change{Now: t0, Overlap: time.Hour})
	if err != nil {
		t.Fatalf("rotation after one that died: %v", err)
	}
	if len(k.CAs) != 2 || len(k.ReleaseKeys) != 1 || !k.CAs[0].Cert.Equal(before.CAs[0].Cert) {
		t.Errorf("rotation after one that died: %d CAs, %d keys; want the old CA and one new, the old key", len(k.CAs), len(k.ReleaseKeys))
	}
}

// TestRotationDiesAfterCommit: keys.json written, the derived files not:
// Open finishes the job.
func TestRotationDiesAfterCommit(t *testing.T) {
	dir := legacyDir(t)
	legacy := map[string][]byte{}
	for _, name := range []string{LegacyCACert, LegacyCAKey, LegacyServerCert, LegacyServerKey, LegacyReleaseKey, ReleasePubFile} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			legacy[name] = data
		}
	}
	k, err := Rotate(dir, KindCA, Change{Now: t0, Overlap: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range legacy { // as if Repair never ran
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := Open(dir, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !l.Keyring().Equal(k) {
		t.Errorf("Open after a rotation died after its commit did not load it")
	}
	if diff := cmp.Diff([]string{k.CAs[0].Serial, k.CAs[1].Serial}, bundle(t, dir)); diff != "" {
		t.Errorf("ca.pem (-want +got):\n%s", diff)
	}
	for _, name := range []string{LegacyCAKey, LegacyServerCert, LegacyServerKey, LegacyReleaseKey} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", name, err)
		}
	}
}

func TestLoadRefuses(t *testing.T) {
	dir := legacyDir(t)
	if _, err := Rotate(dir, KindCA, Change{Now: t0, Overlap: time.Hour}); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, File))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		edit    func(string) string
		want    string
		missing string // a file to remove instead
	}{
		{name: "unknown field", edit: func(s string) string { return strings.Replace(s, `"generation"`, `"generashun"`, 1) }, want: `unknown field "generashun"`},
		{name: "file outside keys", edit: func(s string) string { return strings.Replace(s, `"keys/ca-`, `"../ca-`, 1) }, want: `cas[0].cert: "../ca-`},
		{name: "newest CA retiring", edit: func(s string) string {
			return strings.Replace(s, `"added_at": "2026-05-01T12:00:00Z"`, `"added_at": "2026-05-01T12:00:00Z", "retires_at": "2026-06-01T00:00:00Z"`, 1)
		}, want: "cas[1]: the newest CA issues certificates and cannot retire"},
		{name: "no CA", edit: func(string) string { return `{"generation": 1, "cas": [], "release_keys": []}` }, want: "cas: no CA"},
		{name: "a named file missing", missing: "server", want: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, File)
			if tc.missing != "" {
				k := load(t, dir)
				p := filepath.Join(dir, k.CAs[1].files.ServerCert)
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				os.Remove(p)
				defer os.WriteFile(p, data, 0o644)
			} else {
				if err := os.WriteFile(path, []byte(tc.edit(string(good))), 0o600); err != nil {
					t.Fatal(err)
				}
				defer os.WriteFile(path, good, 0o600)
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestLiveReload: a running controller's keyring follows keys.json.
func TestLiveReload(t *testing.T) {
	dir := legacyDir(t)
	l, err := Open(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := l.Reload(t0); changed || err != nil {
		t.Errorf("Reload without a rotation = %v, %v", changed, err)
	}
	if _, err := Rotate(dir, KindSigningKey, Change{Now: t0, Overlap: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if changed, err := l.Reload(t0); !changed || err != nil {
		t.Fatalf("Reload after a rotation = %v, %v", changed, err)
	}
	if l.Generation() != 1 || len(l.PublicKeys()) != 2 {
		t.Errorf("after reload: generation %d, %d keys", l.Generation(), len(l.PublicKeys()))
	}
	// A keys.json that does not load leaves the keyring in use.
	if err := os.WriteFile(filepath.Join(dir, File), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reload(t0); err == nil {
		t.Error("Reload of a broken keys.json: no error")
	}
	if l.Generation() != 1 {
		t.Errorf("a broken keys.json replaced the keyring in use")
	}
}

// TestRecord: each rotation reaches the audit log once.
func TestRecord(t *testing.T) {
	dir := legacyDir(t)
	st := store.NewMemory()
	ctx := context.Background()
	logged := func() []string {
		t.Helper()
		var out []string
		err := st.View(ctx, func(tx store.Tx) error {
			entries, err := tx.LogEntries(0, 0)
			for _, e := range entries {
				out = append(out, e.GetActor()+" "+e.GetAction()+" "+e.GetDetails()["generation"])
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if err := Record(ctx, st, load(t, dir), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := Rotate(dir, KindCA, Change{Now: t0, By: "root", Overlap: time.Hour}); err != nil {
		t.Fatal(err)
	}
	k, err := Rotate(dir, KindSigningKey, Change{Now: t0, By: "ops", Overlap: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := Record(ctx, st, k, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"local:root ca.rotate 1", "local:ops signing-key.rotate 2"}
	if diff := cmp.Diff(want, logged()); diff != "" {
		t.Errorf("audit log (-want +got):\n%s", diff)
	}
	err = Record(ctx, st, &Keyring{Generation: 1, Events: k.Events[:1]}, t0)
	if err == nil || !strings.Contains(err.Error(), "keys.json has generation 1, but the audit log holds rotations up to generation 2") {
		t.Errorf("Record of an older keyring = %v", err)
	}
	if diff := cmp.Diff(want, logged()); diff != "" {
		t.Errorf("audit log after a refused Record (-want +got):\n%s", diff)
	}
}
