package fleet

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/pki"
	"github.com/cairn-ops/cairn/internal/stamp"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// enrollment serves the Enrollment service, the one agent method open to
// callers without a certificate.
type enrollment struct {
	agentv1.UnimplementedEnrollmentServer
	f *Fleet
}

var _ agentv1.EnrollmentServer = (*enrollment)(nil)

// Enroll trades a join token and a CSR for a node certificate. The token
// is checked and used, the node created, its certificate signed and the
// enrollment logged in one transaction: a refused token or a bad CSR
// writes nothing.
func (e *enrollment) Enroll(ctx context.Context, req *agentv1.EnrollRequest) (*agentv1.EnrollResponse, error) {
	f := e.f
	if req.GetToken() == "" {
		return nil, status.Error(codes.InvalidArgument, "an enrollment token is required; create one with cairnctl enroll-token create")
	}
	if len(req.GetCsrDer()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "a certificate request (csr_der) is required")
	}
	now := f.now()
	ca := f.keys.IssuingCA()
	hash := auth.HashToken(req.GetToken())
	var (
		node    *controllerv1.NodeRecord
		certDER []byte
	)
	err := f.st.Update(ctx, func(tx store.Tx) error {
		tok, err := tx.EnrollToken(hash)
		if errors.Is(err, store.ErrNotFound) {
			return status.Error(codes.PermissionDenied, "enrollment token unknown")
		}
		if err != nil {
			return fmt.Errorf("read enrollment token: %w", err)
		}
		exp, err := time.Parse(time.RFC3339Nano, tok.GetExpiresAt())
		if err != nil {
			return fmt.Errorf("enrollment token %s: bad expiry %q: %w", tok.GetId(), tok.GetExpiresAt(), err)
		}
		if exp.Before(now) {
			return status.Errorf(codes.PermissionDenied, "enrollment token expired at %s; create a new one with cairnctl enroll-token create", exp.UTC().Format(time.RFC3339))
		}
		if tok.GetUsesLeft() == 0 {
			return status.Error(codes.PermissionDenied, "enrollment token already used")
		}
		id, err := newNodeID(tx)
		if err != nil {
			return err
		}
		certDER, err = ca.SignNode(req.GetCsrDer(), id, now, pki.NodeValidity)
		if err != nil {
			return status.Errorf(codes.InvalidArgument, "bad certificate request: %v", err)
		}
		cert, err := x509.ParseCertificate(certDER)
		if err != nil {
			return fmt.Errorf("parse issued certificate: %w", err)
		}

		tok.UsesLeft--
		if err := tx.PutEnrollToken(tok); err != nil {
			return err
		}
		labels := make(map[string]string, len(tok.GetLabels())+len(req.GetLabels()))
		maps.Copy(labels, tok.GetLabels())
		maps.Copy(labels, req.GetLabels())
		node = &controllerv1.NodeRecord{
			Id:           id,
			Hostname:     req.GetHostname(),
			Labels:       labels,
			AgentVersion: req.GetAgentVersion(),
			State:        controllerv1.NodeRecord_STATE_DISCONNECTED,
			EnrolledAt:   stamp.Format(now),
			LastSeen:     stamp.Format(now),
			CertSerial:   pki.SerialHex(cert),
			CertNotAfter: stamp.Format(cert.NotAfter),
		}
		if err := tx.PutNode(node); err != nil {
			return err
		}
		_, err = auditlog.Append(tx, now, "node:"+id, "node.enroll", "node/"+id, map[string]string{
			"hostname": req.GetHostname(),
			"token_id": tok.GetId(),
		})
		return err
	})
	if err != nil {
		if _, ok := status.FromError(err); ok {
			f.log.Info("enrollment refused", "hostname", req.GetHostname(), "reason", status.Convert(err).Message())
			return nil, err
		}
		return nil, status.Errorf(codes.Internal, "enroll: %v", err)
	}
	f.log.Info("node enrolled", "node_id", node.GetId(), "hostname", node.GetHostname())
	// ca_pem and release_public_key for agents that do not read trust:
	// the CA that issued the certificate and the key that signs now.
	trust := f.keys.Trust(now)
	return &agentv1.EnrollResponse{
		NodeId:           node.GetId(),
		CertificateDer:   certDER,
		CaPem:            ca.CertPEM,
		ReleasePublicKey: trust.GetReleaseKeys()[len(trust.GetReleaseKeys())-1].GetPublicKey(),
		Trust:            trust,
	}, nil
}

// newNodeID returns an unused node ID: "n-" and 12 random hex digits.
func newNodeID(tx store.Tx) (string, error) {
	for range 5 {
		b := make([]byte, 6)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("random node ID: %w", err)
		}
		id := "n-" + hex.EncodeToString(b)
		_, err := tx.Node(id)
		if errors.Is(err, store.ErrNotFound) {
			return id, nil
		}
		if err != nil {
			return "", err
		}
	}
	return "", errors.New("random node ID: five collisions in a row")
}
