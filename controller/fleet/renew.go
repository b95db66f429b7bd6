package fleet

import (
	"context"
	"crypto/x509"
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

// Renew signs a fresh CSR for the calling node, under the same node ID.
func (a *agentService) Renew(ctx context.Context, req *agentv1.RenewRequest) (*agentv1.RenewResponse, error) {
	f := a.f
	id, err := nodeID(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := f.liveNode(ctx, id); err != nil {
		return nil, err
	}
	now := f.now()
	certDER, err := f.keys.IssuingCA().SignNode(req.GetCsrDer(), id, now, pki.NodeValidity)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "bad certificate request: %v", err)
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "parse issued certificate: %v", err)
	}
	err = f.st.Update(ctx, func(tx store.Tx) error {
		n, err := tx.Node(id)
		if err != nil {
			return err
		}
		if n.GetState() == controllerv1.NodeRecord_STATE_REVOKED {
			return auth.NodeRevokedError(id)
		}
		n.CertSerial = pki.SerialHex(cert)
		n.CertNotAfter = stamp.Format(cert.NotAfter)
		if err := tx.PutNode(n); err != nil {
			return err
		}
		_, err = auditlog.Append(tx, now, "node:"+id, "node.renew", "node/"+id, map[string]string{
			"cert_serial":    n.GetCertSerial(),
			"cert_not_after": n.GetCertNotAfter(),
		})
		return err
	})
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		return nil, status.Errorf(codes.Internal, "renew: %v", err)
	}
	f.log.Info("node certificate renewed", "node_id", id, "cert_not_after", cert.NotAfter.UTC().Format(time.RFC3339))
	return &agentv1.RenewResponse{CertificateDer: certDER}, nil
}
