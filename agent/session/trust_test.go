package session

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-ops/cairn/internal/pki"
	"github.com/cairn-ops/cairn/internal/release"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// trustMessage is what a controller in a rotation's overlap sends: the
// old CA and key retiring at retires, the new ones after them.
func trustMessage(oldCA, newCA *pki.CA, oldKey, newKey ed25519.PublicKey, retires time.Time) *agentv1.ControllerMessage {
	at := retires.UTC().Format(time.RFC3339Nano)
	return &agentv1.ControllerMessage{Msg: &agentv1.ControllerMessage_Trust{Trust: &agentv1.Trust{
		Cas: []*agentv1.TrustedCA{{CertificateDer: oldCA.Cert.Raw, RetiresAt: at}, {CertificateDer: newCA.Cert.Raw}},
		ReleaseKeys: []*agentv1.TrustedReleaseKey{
			{PublicKey: oldKey, RetiresAt: at}, {PublicKey: newKey},
		},
	}}}
}

// TestCARotation: a connected agent told of a new CA and release key
// saves them, renews its certificate from the new CA at once and
// reconnects with it; a restarted agent keeps trusting both until the old
// ones retire.
func TestCARotation(t *testing.T) {
	f := newFakeController(t)
	dir := f.enroll(t)
	runAgent(t, dir, nil)
	s := f.session()

	now := time.Now()
	newCA, err := pki.NewCA("cairn test CA (rotated)", now)
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := pki.NewReleaseKey()
	if err != nil {
		t.Fatal(err)
	}
	oldCA := f.ca
	f.rotate(newCA)
	retires := now.Add(time.Hour)
	s.send <- trustMessage(oldCA, newCA, f.release, newKey.Public().(ed25519.PublicKey), retires)

	f.wait("renew", "")
	f.session()
	f.mu.Lock()
	presented := f.peerCerts[len(f.peerCerts)-1]
	f.mu.Unlock()
	if err := presented.CheckSignatureFrom(newCA.Cert); err != nil {
		t.Errorf("after the rotation the agent presented a certificate the new CA did not issue: %v", err)
	}

	trust := loadTrust(t, dir)
	want, err := trustFromProto(trustMessage(oldCA, newCA, f.release, newKey.Public().(ed25519.PublicKey), retires).GetTrust())
	if err != nil {
		t.Fatal(err)
	}
	if !trust.Equal(want) {
		t.Errorf("trust.json = %+v, want %+v", trust, want)
	}
	restarted, err := New(Config{DataDir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !restarted.trustNow().Equal(want) {
		t.Errorf("a restarted agent trusts %+v, want %+v", restarted.trustNow(), want)
	}
	if fi, err := os.Stat(filepath.Join(dir, TrustFile)); err != nil || fi.Mode().Perm() != filePerm {
		t.Errorf("%s: %v, %v; want mode %v", TrustFile, fi.Mode(), err, os.FileMode(filePerm))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.renewals != 1 {
		t.Errorf("%d renewals, want 1: one per rotation", f.renewals)
	}
}

// loadTrust is the trust of the agent in dir, as it loads it at start.
func loadTrust(t *testing.T, dir string) *Trust {
	t.Helper()
	id, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := LoadTrust(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	return trust
}

// TestBadTrustKeepsTheOld: a trust the agent cannot use is refused, the
// old one stays (in memory and on disk), and the session goes on.
func TestBadTrustKeepsTheOld(t *testing.T) {
	f := newFakeController(t)
	dir := f.enroll(t)
	runAgent(t, dir, nil)
	s := f.session()
	for _, bad := range []*agentv1.Trust{
		{ReleaseKeys: []*agentv1.TrustedReleaseKey{{PublicKey: f.release}}},
		{Cas: []*agentv1.TrustedCA{{CertificateDer: f.ca.Cert.Raw}}},
		{Cas: []*agentv1.TrustedCA{{CertificateDer: []byte("junk")}}, ReleaseKeys: []*agentv1.TrustedReleaseKey{{PublicKey: f.release}}},
		{Cas: []*agentv1.TrustedCA{{CertificateDer: f.ca.Cert.Raw, RetiresAt: "soon"}}, ReleaseKeys: []*agentv1.TrustedReleaseKey{{PublicKey: f.release}}},
		{Cas: []*agentv1.TrustedCA{{CertificateDer: f.ca.Cert.Raw}}, ReleaseKeys: []*agentv1.TrustedReleaseKey{{PublicKey: []byte{1}}}},
	} {
		s.send <- &agentv1.ControllerMessage{Msg: &agentv1.ControllerMessage_Trust{Trust: bad}}
	}
	s.command("cmd-1", "os")
	f.wait("result", "cmd-1")
	if _, err := os.Stat(filepath.Join(dir, TrustFile)); !os.IsNotExist(err) {
		t.Errorf("a refused trust was saved: %v", err)
	}
}

func TestTrustFromProtoRefuses(t *testing.T) {
	ca, err := pki.NewCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.NewReleaseKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	leafPEM, _, err := ca.IssueServer([]string{"x"}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.DecodeCert(leafPEM)
	if err != nil {
		t.Fatal(err)
	}
	goodCA := &agentv1.TrustedCA{CertificateDer: ca.Cert.Raw}
	goodKey := &agentv1.TrustedReleaseKey{PublicKey: pub}
	many := func(n int) []*agentv1.TrustedCA {
		out := make([]*agentv1.TrustedCA, n)
		for i := range out {
			out[i] = goodCA
		}
		return out
	}
	for _, tc := range []struct {
		name string
		m    *agentv1.Trust
		want string
	}{
		{"no CA", &agentv1.Trust{ReleaseKeys: []*agentv1.TrustedReleaseKey{goodKey}}, "no CA"},
		{"no key", &agentv1.Trust{Cas: []*agentv1.TrustedCA{goodCA}}, "no release key"},
		{"not a CA", &agentv1.Trust{Cas: []*agentv1.TrustedCA{{CertificateDer: leaf.Raw}}, ReleaseKeys: []*agentv1.TrustedReleaseKey{goodKey}}, "cas[0] (CN=x,OU=cairn-controller) is not a CA certificate"},
		{"too many CAs", &agentv1.Trust{Cas: many(maxTrustedCAs + 1), ReleaseKeys: []*agentv1.TrustedReleaseKey{goodKey}}, "17 CAs and 1 release keys: at most 16 and 64"},
		{"bad time", &agentv1.Trust{Cas: []*agentv1.TrustedCA{goodCA}, ReleaseKeys: []*agentv1.TrustedReleaseKey{{PublicKey: pub, RetiresAt: "2026-13-01"}}}, `release_keys[0]: retires_at "2026-13-01": want an RFC 3339 time`},
		{"short key", &agentv1.Trust{Cas: []*agentv1.TrustedCA{goodCA}, ReleaseKeys: []*agentv1.TrustedReleaseKey{{PublicKey: pub[:31]}}}, "release_keys[0] has 31 bytes, want 32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := trustFromProto(tc.m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("trustFromProto = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestTrustPool: a CA counts until it retires, never after.
func TestTrustPool(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var cas []*pki.CA
	for range 3 {
		ca, err := pki.NewCA("test", now.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		cas = append(cas, ca)
	}
	trust := &Trust{
		CAs: []TrustedCA{
			{Cert: cas[0].Cert, RetiresAt: now},                // retired just now
			{Cert: cas[1].Cert, RetiresAt: now.Add(time.Hour)}, // in its overlap
			{Cert: cas[2].Cert},                                // current
		},
		ReleaseKeys: release.SingleKey(make(ed25519.PublicKey, ed25519.PublicKeySize)),
	}
	pool := trust.Pool(now)
	for i, want := range []bool{false, true, true} {
		key, err := pki.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		csr, err := pki.NewCSR(key, "n-1")
		if err != nil {
			t.Fatal(err)
		}
		der, err := cas[i].SignNode(csr, "n-1", now, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		_, err = checkNodeCert(der, pool, key, now)
		if got := err == nil; got != want {
			t.Errorf("certificate of CA %d accepted = %v (%v), want %v", i, got, err, want)
		}
	}
	if !trust.Issuing().Equal(cas[2].Cert) {
		t.Errorf("Issuing is not the newest CA")
	}
}
