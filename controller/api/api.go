package api

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/dml"
	"github.com/cairn-ops/cairn/controller/store"
	signed "github.com/cairn-ops/cairn/internal/release"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Dispatcher is the fleet as the operator services see it. Notify tells
// it that a node has new pending commands, so a connected agent receives
// them at once (a node that is offline gets them when it reconnects);
// Notify must not block. IsConnected reports whether the node has a live
// session now.
type Dispatcher interface {
	Notify(nodeID string)
	IsConnected(nodeID string) bool
}

// ReleaseKeys are the controller's release-signing keys as they are now
// (controller/keyring): a signing-key rotation changes them while the
// controller runs.
type ReleaseKeys interface {
	// SigningKey signs releases sealed now.
	SigningKey() ed25519.PrivateKey
	// PublicKeys check signatures, with when each key retires.
	PublicKeys() signed.Keys
}

// Deps is what the operator services need.
type Deps struct {
	Store      store.Store
	Blobs      *blob.Store
	Dispatcher Dispatcher
	// DML is the definitive media library; nil answers the Artifacts
	// service with Unavailable.
	DML *dml.DML
	// ArtifactReferenced reports whether a release references an
	// artifact, for garbage collection; nil refuses garbage collection
	// (until releases exist, nothing can tell what is in use).
	ArtifactReferenced func(tx store.Tx, digest string) bool
	// ReleaseKeys sign sealed releases and check release signatures in
	// VerifyRelease; nil refuses SealRelease.
	ReleaseKeys ReleaseKeys
	// Rollouts is the rollout engine; nil answers the Rollouts service
	// with Unavailable.
	Rollouts RolloutEngine
	// Reports renders the reports on rollouts; nil answers RolloutReport
	// with Unavailable.
	Reports Reports
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives internal errors; nil discards.
	Logger *slog.Logger
}

// Register registers the eleven operator services on s.
func Register(s *grpc.Server, d Deps) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b := &base{Deps: d}
	controllerv1.RegisterEnrollTokensServer(s, &enrollTokens{base: b})
	controllerv1.RegisterNodesServer(s, &nodes{base: b})
	controllerv1.RegisterAuditsServer(s, &audits{base: b})
	controllerv1.RegisterCMSServer(s, &cmsServer{base: b})
	controllerv1.RegisterServicesServer(s, &services{base: b})
	controllerv1.RegisterUsersServer(s, &users{base: b})
	controllerv1.RegisterAuditLogServer(s, &auditLog{base: b})
	controllerv1.RegisterArtifactsServer(s, &artifacts{base: b})
	controllerv1.RegisterReleasesServer(s, &releases{base: b})
	controllerv1.RegisterKnownErrorsServer(s, &knownErrors{base: b})
	controllerv1.RegisterRolloutsServer(s, &rollouts{base: b})
}

// base is shared by every service.
type base struct {
	Deps
}

// actor names the caller for records and the audit log.
func actor(ctx context.Context) string {
	p, _ := auth.FromContext(ctx)
	return p.Actor()
}

// newID returns prefix + 16 random hex digits.
func newID(prefix string) (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return prefix + hex.EncodeToString(b), nil
}
