package pki

import (
	"crypto/x509"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"
)

func TestNodeCertificateFromCSR(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("cairn test CA", now)
	if err != nil {
		t.Fatal(err)
	}
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := NewCSR(key, "i-claim-to-be-someone-else")
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.SignNode(csr, "node-123", now, NodeValidity)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("node certificate does not verify against the CA: %v", err)
	}
	id, err := NodeID(cert)
	if err != nil || id != "node-123" {
		t.Errorf("NodeID = %q, %v; want node-123 (the CSR's subject must be ignored)", id, err)
	}
	if got := cert.NotAfter.Sub(now); got < NodeValidity-time.Minute || got > NodeValidity+time.Minute {
		t.Errorf("lifetime %v, want %v", got, NodeValidity)
	}
}

func TestSignNodeRejectsBadCSR(t *testing.T) {
	ca, err := NewCA("ca", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := NewKey()
	csr, _ := NewCSR(key, "x")
	csr[len(csr)-3] ^= 0xff // break the signature
	if _, err := ca.SignNode(csr, "n", time.Now(), time.Hour); err == nil {
		t.Error("a CSR with a broken signature was signed")
	}
	if _, err := ca.SignNode([]byte("junk"), "n", time.Now(), time.Hour); err == nil {
		t.Error("junk was signed")
	}
}

func TestServerCertificateIsNotANode(t *testing.T) {
	now := time.Now()
	ca, _ := NewCA("ca", now)
	certPEM, keyPEM, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, now)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := DecodeCert(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NodeID(cert); !errors.Is(err, ErrNotNode) {
		t.Errorf("NodeID(server cert) = %v, want ErrNotNode", err)
	}
	if _, err := DecodeKey(keyPEM); err != nil {
		t.Errorf("server key: %v", err)
	}
	if err := cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("server cert for 127.0.0.1: %v", err)
	}
}

func TestCASaveLoad(t *testing.T) {
	dir := t.TempDir()
	ca, _ := NewCA("ca", time.Now())
	if err := ca.Save(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCA(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Cert.Equal(ca.Cert) {
		t.Error("loaded CA differs")
	}
	if _, err := LoadCA(filepath.Join(dir, "ca-key.pem"), filepath.Join(dir, "ca.pem")); err == nil {
		t.Error("swapped files accepted")
	}
}

func TestReleaseKey(t *testing.T) {
	k, err := NewReleaseKey()
	if err != nil {
		t.Fatal(err)
	}
	pemKey, err := EncodeKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeKey(pemKey); err != nil {
		t.Fatal(err)
	}
}
