// Package handshake tells a controller that TLS refused from one that
// could not be reached. grpc-go reports both as Unavailable with the
// handshake error flattened into the message; Credentials keeps the
// error of the last failed client handshake with its type, so callers
// decide with errors.As (Untrusted), not by matching "x509:" in a text.
package handshake

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"

	"google.golang.org/grpc/credentials"
)

// Credentials wraps gRPC transport credentials and records the outcome of
// each client handshake. Clones share the record.
type Credentials struct {
	credentials.TransportCredentials
	rec *record
}

var _ credentials.TransportCredentials = (*Credentials)(nil)

type record struct {
	mu   sync.Mutex
	last error
}

// Wrap returns c recording its client handshakes.
func Wrap(c credentials.TransportCredentials) *Credentials {
	return &Credentials{TransportCredentials: c, rec: &record{}}
}

// ClientHandshake runs the wrapped handshake and records its error (nil
// when it succeeded).
func (c *Credentials) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	out, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, conn)
	c.rec.mu.Lock()
	c.rec.last = err
	c.rec.mu.Unlock()
	return out, info, err
}

// Clone returns a copy that shares the record.
func (c *Credentials) Clone() credentials.TransportCredentials {
	return &Credentials{TransportCredentials: c.TransportCredentials.Clone(), rec: c.rec}
}

// Err returns the error of the last client handshake, nil when it
// succeeded or none ran.
func (c *Credentials) Err() error {
	c.rec.mu.Lock()
	defer c.rec.mu.Unlock()
	return c.rec.last
}

// Untrusted returns the certificate verification failure in err: the
// peer's certificate did not verify against the trusted CAs, or does not
// name the address dialled. It returns nil for any other error (a refused
// or reset connection, a timeout), which a retry may cure.
func Untrusted(err error) error {
	var (
		verify    *tls.CertificateVerificationError
		authority x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &verify):
		return verify
	case errors.As(err, &authority):
		return authority
	case errors.As(err, &hostname):
		return hostname
	case errors.As(err, &invalid):
		return invalid
	}
	return nil
}
