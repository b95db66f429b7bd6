package session

import (
	"context"
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

// renewIfDue renews the node certificate when it is due and returns
// errRenewed so the session reconnects with it. A failed renewal is
// logged and tried again at the next check while the old certificate is
// still valid.
func (a *Agent) renewIfDue(ctx context.Context, c *client) error {
	leaf := a.credsNow().Leaf
	if a.cfg.Now().Before(RenewAt(leaf.NotBefore, leaf.NotAfter)) {
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
	old := a.credsNow()
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
	leaf, err := checkNodeCert(resp.GetCertificateDer(), old.CA, key, a.cfg.Now())
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
	a.log.Info("certificate renewed", "serial", pki.SerialHex(leaf), "expires", leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}
