package fleet_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/cairn-ops/cairn/controller/keyring"
	"github.com/cairn-ops/cairn/internal/refusal"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// recvTrust returns the next message on s, which must be a Trust.
func recvTrust(t *testing.T, s session) *agentv1.Trust {
	t.Helper()
	m, err := s.BidiStreamingClient.Recv()
	if err != nil {
		t.Fatalf("receive trust: %v", err)
	}
	if m.GetTrust() == nil {
		t.Fatalf("received %v, want a Trust", m)
	}
	return m.GetTrust()
}

// rotated loads the keyring a rotation changed and tells the fleet, as
// the controller does when it sees keys.json change.
func (h *harness) rotated() {
	h.t.Helper()
	changed, err := h.keys.Reload(h.clock.Now())
	if err != nil || !changed {
		h.t.Fatalf("Reload = %v, %v; want a changed keyring", changed, err)
	}
	h.fleet.TrustChanged()
}

// renew trades a CSR for a certificate over Renew with cert.
func (h *harness) renew(cert *tls.Certificate) (*tls.Certificate, error) {
	h.t.Helper()
	next, csr := newCSR(h.t)
	resp, err := agentv1.NewAgentClient(h.dial(cert)).Renew(context.Background(), &agentv1.RenewRequest{CsrDer: csr})
	if err != nil {
		return nil, err
	}
	next.Certificate = [][]byte{resp.GetCertificateDer()}
	if next.Leaf, err = x509.ParseCertificate(resp.GetCertificateDer()); err != nil {
		h.t.Fatal(err)
	}
	return next, nil
}

// TestCARotation: a connected agent is told of the new CA at once; during
// the overlap its old certificate works and a renewal gives it one from
// the new CA; after the overlap the old certificate is refused with the
// reason CertificateRetired (its open session ends at the next sweep), and
// the new one works.
func TestCARotation(t *testing.T) {
	h := newHarness(t, 0)
	_, oldCert := h.enroll("web1")
	s := h.connect(context.Background(), oldCert)
	if got := recvTrust(t, s); len(got.GetCas()) != 1 || len(got.GetReleaseKeys()) != 1 {
		t.Fatalf("trust on connect = %v, want one CA and one release key", got)
	}

	k, err := keyring.Rotate(h.dir, keyring.KindCA, keyring.Change{Now: h.clock.Now(), By: "test", Overlap: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	oldCA, newCA := k.CAs[0], k.CAs[1]
	h.rotated()
	got := recvTrust(t, s)
	if len(got.GetCas()) != 2 || !newCA.Cert.Equal(mustParse(t, got.GetCas()[1].GetCertificateDer())) || got.GetCas()[0].GetRetiresAt() == "" {
		t.Fatalf("trust after the rotation = %v, want the old CA retiring, then the new", got)
	}

	newCert, err := h.renew(oldCert)
	if err != nil {
		t.Fatalf("renew during the overlap: %v", err)
	}
	if newCert.Leaf.CheckSignatureFrom(newCA.Cert) != nil {
		t.Errorf("the renewed certificate is not the new CA's")
	}

	if _, err := keyring.Finish(h.dir, keyring.KindCA, keyring.Change{Now: h.clock.Now(), By: "test"}); err != nil {
		t.Fatal(err)
	}
	h.clock.Add(time.Second)
	h.rotated()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.fleet.Run(ctx) }()
	_, err = s.Recv()
	checkRetired(t, "the open session of the old certificate", err, oldCA)
	_, err = h.renew(oldCert)
	checkRetired(t, "renew with the old certificate", err, oldCA)

	s2 := h.connect(context.Background(), newCert)
	if got := recvTrust(t, s2); len(got.GetCas()) != 1 || !newCA.Cert.Equal(mustParse(t, got.GetCas()[0].GetCertificateDer())) {
		t.Errorf("trust after the overlap = %v, want the new CA alone", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func checkRetired(t *testing.T, what string, err error, ca *keyring.CA) {
	t.Helper()
	if codeOf(err) != codes.PermissionDenied || refusal.Of(err) != refusal.CertificateRetired {
		t.Errorf("%s: %v (reason %q), want PermissionDenied with reason %s", what, err, refusal.Of(err), refusal.CertificateRetired)
		return
	}
	if md := refusal.Metadata(err); md["ca_serial"] != ca.Serial {
		t.Errorf("%s: refusal names CA %q, want %s", what, md["ca_serial"], ca.Serial)
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
