package session

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/internal/atomicfile"
	"github.com/cairn-ops/cairn/internal/handshake"
	"github.com/cairn-ops/cairn/internal/pki"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// EnrollOptions says how to enroll.
type EnrollOptions struct {
	DataDir string
	// Controller is the controller's host:port.
	Controller string
	// Token is the join token from `cairnctl enroll-token create`.
	Token string
	// CAPEM is the controller's CA certificate (its DATA/ca.pem), which
	// the operator hands to the agent. Enrollment verifies the controller
	// against it; there is no trust on first use.
	CAPEM        []byte
	Hostname     string
	Labels       map[string]string
	AgentVersion string
	// ReconnectBase and ReconnectMax pace retries while the controller is
	// unreachable; zero means 500ms and 60s.
	ReconnectBase time.Duration
	ReconnectMax  time.Duration
	Logger        *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Enroll trades the join token and a CSR for a node certificate and
// writes the identity into opts.DataDir: the key, the certificate, the CA
// and identity.json last. It retries while the controller is unreachable
// and gives up at once when the controller refuses the token
// (ErrEnrollRefused) or cannot be verified against the CA (ErrUntrusted).
func Enroll(ctx context.Context, opts EnrollOptions) (*Identity, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(opts.CAPEM) {
		return nil, fmt.Errorf("controller CA: no PEM certificate found")
	}
	serverName, err := hostOf(opts.Controller)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := os.Chmod(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, fmt.Errorf("generate node key: %w", err)
	}
	csr, err := pki.NewCSR(key, opts.Hostname)
	if err != nil {
		return nil, err
	}

	creds := handshake.Wrap(credentials.NewTLS(clientTLS(roots, serverName, nil)))
	conn, err := grpc.NewClient(opts.Controller, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgBytes)))
	if err != nil {
		return nil, fmt.Errorf("controller address %q: %w", opts.Controller, err)
	}
	defer conn.Close()
	client := agentv1.NewEnrollmentClient(conn)
	req := &agentv1.EnrollRequest{
		Token:        opts.Token,
		CsrDer:       csr,
		Hostname:     opts.Hostname,
		Labels:       opts.Labels,
		AgentVersion: opts.AgentVersion,
	}
	bo := &Backoff{Base: orDefault(opts.ReconnectBase, defaultReconnectBase), Cap: orDefault(opts.ReconnectMax, DefaultReconnectMax)}
	var resp *agentv1.EnrollResponse
	for {
		resp, err = client.Enroll(ctx, req)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("enroll with %s: %w", opts.Controller, ctx.Err())
		}
		if err := enrollError(opts.Controller, err, creds.Err()); err != nil {
			return nil, err
		}
		d := bo.Next()
		opts.Logger.Warn("controller unreachable, retrying enrollment", "controller", opts.Controller,
			"error", status.Convert(err).Message(), "retry_in", d.Round(time.Millisecond))
		if !sleep(ctx, d) {
			return nil, fmt.Errorf("enroll with %s: %w", opts.Controller, ctx.Err())
		}
	}

	trust, leaf, err := checkEnrollment(resp, roots, key, opts.Now())
	if err != nil {
		return nil, fmt.Errorf("enroll with %s: %w", opts.Controller, err)
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return nil, err
	}
	id := &Identity{
		NodeID:           resp.GetNodeId(),
		Controller:       opts.Controller,
		ReleasePublicKey: resp.GetReleasePublicKey(),
		EnrolledAt:       opts.Now().UTC(),
	}
	files := []struct {
		name string
		data []byte
	}{
		{KeyFile, keyPEM},
		{CertFile, pki.EncodeCert(leaf.Raw)},
		{CAFile, pki.EncodeCert(trust.Issuing().Raw)},
	}
	for _, f := range files {
		if err := atomicfile.Write(filepath.Join(opts.DataDir, f.name), f.data, filePerm); err != nil {
			return nil, fmt.Errorf("save identity: %w", err)
		}
	}
	if resp.GetTrust() != nil {
		if err := saveTrust(opts.DataDir, trust); err != nil {
			return nil, err
		}
	}
	if err := SaveIdentity(opts.DataDir, id); err != nil {
		return nil, fmt.Errorf("save identity: %w", err)
	}
	opts.Logger.Info("enrolled", "node", id.NodeID, "controller", opts.Controller)
	return id, nil
}

// enrollError returns the error that ends enrollment, or nil when the
// failure is worth a retry (the controller is unreachable). tlsErr is the
// error of the last TLS handshake: a certificate that did not verify is
// ErrUntrusted, which no retry cures.
func enrollError(controller string, err, tlsErr error) error {
	st := status.Convert(err)
	switch st.Code() {
	case codes.PermissionDenied, codes.Unauthenticated, codes.NotFound, codes.InvalidArgument, codes.FailedPrecondition, codes.ResourceExhausted:
		return fmt.Errorf("%w by %s: %s (ask an operator for a new token: cairnctl enroll-token create)", ErrEnrollRefused, controller, st.Message())
	case codes.Unavailable:
		if bad := handshake.Untrusted(tlsErr); bad != nil {
			return fmt.Errorf("%w: %s: %v (is --ca the controller's ca.pem?)", ErrUntrusted, controller, bad)
		}
		return nil
	case codes.DeadlineExceeded, codes.Aborted:
		return nil
	}
	return fmt.Errorf("enroll with %s: %s", controller, st.Message())
}

// checkEnrollment verifies the controller's answer and returns what the
// agent is to trust: the CAs and release keys of the answer's trust (or,
// from a controller that sends none, its CA and release key). One of
// those CAs must be one the operator gave (the TLS connection was
// verified with the given ones, so the controller vouches for the
// others, as it does during a CA rotation), and the certificate must be
// for this key, chain to one of them as a client certificate and name a
// node.
func checkEnrollment(resp *agentv1.EnrollResponse, given *x509.CertPool, key *ecdsa.PrivateKey, now time.Time) (*Trust, *x509.Certificate, error) {
	trust, err := enrollmentTrust(resp)
	if err != nil {
		return nil, nil, fmt.Errorf("controller's trust: %w", err)
	}
	known := slices.ContainsFunc(trust.CAs, func(ca TrustedCA) bool {
		_, err := ca.Cert.Verify(x509.VerifyOptions{Roots: given, CurrentTime: now})
		return err == nil
	})
	if !known {
		return nil, nil, fmt.Errorf("%w: the controller returned a CA (%s) other than the one given", ErrUntrusted, trust.Issuing().Subject)
	}
	leaf, err := checkNodeCert(resp.GetCertificateDer(), trust.Pool(now), key, now)
	if err != nil {
		return nil, nil, err
	}
	id, err := pki.NodeID(leaf)
	if err != nil {
		return nil, nil, err
	}
	if id != resp.GetNodeId() {
		return nil, nil, fmt.Errorf("certificate names node %q, the response %q", id, resp.GetNodeId())
	}
	return trust, leaf, nil
}

// enrollmentTrust is the trust of an enrollment answer.
func enrollmentTrust(resp *agentv1.EnrollResponse) (*Trust, error) {
	if resp.GetTrust() != nil {
		return trustFromProto(resp.GetTrust())
	}
	return pinnedTrust(resp.GetCaPem(), resp.GetReleasePublicKey())
}

// checkNodeCert parses a node certificate and checks it belongs to key
// and chains to one of roots as a client certificate.
func checkNodeCert(der []byte, roots *x509.CertPool, key *ecdsa.PrivateKey, now time.Time) (*x509.Certificate, error) {
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("node certificate is not for the key this agent sent")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	return leaf, nil
}
