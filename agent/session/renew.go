package session

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/cairn-ops/cairn/internal/pki"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// RenewAt is when a certificate is due for renewal: two thirds into its
// lifetime.
func RenewAt(notBefore, notAfter time.Time) time.Time {
	return notBefore.Add(notAfter.Sub(notBefore) * 2 / 3)
}

// renewIfDue renews the node certificate when it is due, or when the
// controller's CA was rotated since it was issued, and returns errRenewed
// so the session reconnects with it. A failed renewal is logged and
// tried again at the next check while the old certificate is still
// valid.
func (a *Agent) renewIfDue(ctx context.Context, c *client) error {
	leaf := a.credsNow().Leaf
	a.mu.Lock()
	rotated := a.rotated
	a.rotated = false // one renewal per rotation: no loop if it does not help
	a.mu.Unlock()
	if !rotated && a.cfg.Now().Before(RenewAt(leaf.NotBefore, leaf.NotAfter)) {
		return nil
	}
	if err := a.renew(ctx, c); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		a.log.Warn("certificate renewal failed, will retry", "expires", leaf.NotAfter.UTC().Format(time.RFC3339), "error", err)
		return nil
	}
	return errRenewed
}

// renew asks for a certificate for a new key and installs both.
func (a *Agent) renew(ctx context.Context, c *client) error {
	key, err := pki.NewKey()
	if err != nil {
		return fmt.Errorf("generate node key: %w", err)
	}
	csr, err := pki.NewCSR(key, a.id.NodeID)
	if err != nil {
		return err
	}
	resp, err := c.agent.Renew(ctx, &agentv1.RenewRequest{CsrDer: csr})
	if err != nil {
		return err
	}
	leaf, err := checkNodeCert(resp.GetCertificateDer(), a.trustNow().Pool(a.cfg.Now()), key, a.cfg.Now())
	if err != nil {
		return err
	}
	if id, err := pki.NodeID(leaf); err != nil || id != a.id.NodeID {
		return fmt.Errorf("renewed certificate names node %q, want %q", id, a.id.NodeID)
	}
	if err := saveNew(a.cfg.DataDir, key, leaf.Raw); err != nil {
		return fmt.Errorf("save renewed certificate: %w", err)
	}
	creds, err := LoadCredentials(a.cfg.DataDir)
	if err != nil {
		return err
	}
	a.setCreds(creds)
	a.log.Info("certificate renewed", "serial", pki.SerialHex(leaf), "issuer_ca", caSerial(leaf, a.trustNow()), "expires", leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// caSerial is the serial of the trusted CA that signed leaf, or "" when
// none did.
func caSerial(leaf *x509.Certificate, t *Trust) string {
	for _, ca := range t.CAs {
		if leaf.CheckSignatureFrom(ca.Cert) == nil {
			return pki.SerialHex(ca.Cert)
		}
	}
	return ""
}
