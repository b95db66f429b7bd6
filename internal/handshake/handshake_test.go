package handshake_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/internal/handshake"
	"github.com/cairn-ops/cairn/internal/pki"
)

// serve runs a health server with a certificate for 127.0.0.1 from ca.
func serve(t *testing.T, ca *pki.CA) string {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueServer(nil, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})))
	grpc_health_v1.RegisterHealthServer(s, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func newCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA("test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestUntrusted(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	addr := serve(t, ca)
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	for _, tc := range []struct {
		name      string
		addr      string
		roots     *pki.CA
		server    string
		untrusted bool
	}{
		{name: "trusted", addr: addr, roots: ca, server: "127.0.0.1"},
		{name: "another CA", addr: addr, roots: other, server: "127.0.0.1", untrusted: true},
		{name: "another name", addr: addr, roots: ca, server: "ctl.example.com", untrusted: true},
		{name: "nobody listening", addr: closed, roots: ca, server: "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := x509.NewCertPool()
			pool.AddCert(tc.roots.Cert)
			creds := handshake.Wrap(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: tc.server}))
			conn, err := grpc.NewClient(tc.addr, grpc.WithTransportCredentials(creds))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
			if tc.untrusted || tc.addr == closed {
				if status.Code(err) != codes.Unavailable {
					t.Fatalf("Check = %v, want Unavailable", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			got := handshake.Untrusted(creds.Err())
			if (got != nil) != tc.untrusted {
				t.Errorf("Untrusted(%v) = %v, want untrusted %v", creds.Err(), got, tc.untrusted)
			}
		})
	}
	if handshake.Untrusted(errors.New("x509: certificate signed by unknown authority")) != nil {
		t.Error("Untrusted matched an error by its text")
	}
}
