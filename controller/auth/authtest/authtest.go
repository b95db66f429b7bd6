// Package authtest runs a real gRPC server for tests: TLS on 127.0.0.1
// with a fresh CA, the controller's auth interceptors over a given store,
// and helpers that make users with tokens and node client certificates.
// It is what net/http/httptest is to HTTP handlers.
package authtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/pki"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Server is a running gRPC server behind the auth interceptors.
type Server struct {
	CA    *pki.CA
	Store store.Store
	Addr  string
	GRPC  *grpc.Server
}

// Start serves on 127.0.0.1 with TLS (client certificates verified when
// given, as the controller does) and auth.New(st, time.Now, nil); register
// adds the services before serving starts. The server stops when the test
// ends.
func Start(t testing.TB, st store.Store, register func(*grpc.Server)) *Server {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA("cairn test CA", now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, now)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	creds := credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS13,
	})
	a := auth.New(st, time.Now, nil)
	s := grpc.NewServer(grpc.Creds(creds), grpc.UnaryInterceptor(a.Unary()), grpc.StreamInterceptor(a.Stream()))
	register(s)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }() // returns when the test stops it
	t.Cleanup(s.Stop)
	return &Server{CA: ca, Store: st, Addr: lis.Addr().String(), GRPC: s}
}

// Dial connects to the server, trusting its CA and presenting cert when
// it is not nil. The connection closes when the test ends.
func (s *Server) Dial(t testing.TB, cert *tls.Certificate) *grpc.ClientConn {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(s.CA.Cert)
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS13}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(s.Addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// NodeCert issues a client certificate for nodeID from the server's CA,
// as enrollment does. It does not add the node to the store.
func (s *Server) NodeCert(t testing.TB, nodeID string) *tls.Certificate {
	t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, nodeID)
	if err != nil {
		t.Fatal(err)
	}
	der, err := s.CA.SignNode(csr, nodeID, time.Now(), pki.NodeValidity)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// AddNode stores a node record with the given state.
func AddNode(t testing.TB, st store.Store, n *controllerv1.NodeRecord) {
	t.Helper()
	if err := st.Update(context.Background(), func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
		t.Fatal(err)
	}
}

// AddUser stores a user with roles (none is allowed: such a user may
// only call methods open to any user) and a token for it, and returns
// the token.
func AddUser(t testing.TB, st store.Store, name string, roles ...string) string {
	t.Helper()
	token, err := auth.NewToken(auth.TokenUser)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.PutUser(&controllerv1.UserRecord{Name: name, Roles: roles, CreatedBy: "test"}); err != nil {
			return err
		}
		return tx.PutAPIToken(&controllerv1.APITokenRecord{Id: "tok_" + name, User: name, TokenHash: auth.HashToken(token), CreatedBy: "test"})
	})
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// WithToken returns ctx carrying "authorization: Bearer token".
func WithToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}
