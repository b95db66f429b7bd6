// Package pki is Cairn's certificate handling, shared by the controller
// and the agent: the controller's CA, its server certificate, node client
// certificates issued from agents' CSRs (the agent's key never leaves the
// agent), the release-signing key, and PEM files on disk.
//
// Keys are ECDSA P-256 for TLS and ed25519 for release signing. A node's
// identity is its certificate's CommonName (the node ID) with the
// Organizational Unit "cairn-node"; the controller's server certificate
// has OU "cairn-controller".
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/cairn-ops/cairn/internal/atomicfile"
	"github.com/cairn-ops/cairn/internal/readlimit"
)

// Organizational units that say what a certificate is for.
const (
	OUNode       = "cairn-node"
	OUController = "cairn-controller"
)

// Lifetimes.
const (
	CAValidity     = 10 * 365 * 24 * time.Hour
	ServerValidity = 2 * 365 * 24 * time.Hour
	NodeValidity   = 30 * 24 * time.Hour
)

// ErrNotNode means a certificate is not a Cairn node certificate.
var ErrNotNode = errors.New("not a cairn node certificate")

// CA is a certificate authority: its certificate and signing key.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Key     crypto.Signer
}

// NewKey returns a new ECDSA P-256 key.
func NewKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// NewCA creates a self-signed CA valid from now for CAValidity.
func NewCA(commonName string, now time.Time) (*CA, error) {
	key, err := NewKey()
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"Cairn"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: EncodeCert(der), Key: key}, nil
}

// IssueServer issues the controller's TLS server certificate for the given
// DNS names and IP addresses, with a new key.
func (ca *CA) IssueServer(names []string, ips []net.IP, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := NewKey()
	if err != nil {
		return nil, nil, fmt.Errorf("generate server key: %w", err)
	}
	cn := "cairn-controller"
	if len(names) > 0 {
		cn = names[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, OrganizationalUnit: []string{OUController}},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(ServerValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("create server certificate: %w", err)
	}
	keyPEM, err = EncodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return EncodeCert(der), keyPEM, nil
}

// SignNode checks a CSR's signature and issues a client certificate for
// the node ID, valid from now for validity. The subject comes from the
// controller, never from the CSR: only the public key is taken from it.
func (ca *CA) SignNode(csrDER []byte, nodeID string, now time.Time, validity time.Duration) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("parse certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request signature: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: nodeID, OrganizationalUnit: []string{OUNode}},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign node certificate: %w", err)
	}
	return der, nil
}

// NewCSR makes a certificate request for key. The controller ignores the
// subject; commonName only helps a person reading the request.
func NewCSR(key crypto.Signer, commonName string) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: commonName},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate request: %w", err)
	}
	return der, nil
}

// NodeID returns the node ID a verified client certificate names.
func NodeID(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", fmt.Errorf("%w: no certificate", ErrNotNode)
	}
	for _, ou := range cert.Subject.OrganizationalUnit {
		if ou == OUNode && cert.Subject.CommonName != "" {
			return cert.Subject.CommonName, nil
		}
	}
	return "", fmt.Errorf("%w: subject %q", ErrNotNode, cert.Subject.String())
}

// SerialHex is a certificate's serial number in hex.
func SerialHex(cert *x509.Certificate) string {
	return cert.SerialNumber.Text(16)
}

// NewReleaseKey returns a new ed25519 key for signing releases.
func NewReleaseKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate release key: %w", err)
	}
	return priv, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return n.Add(n, big.NewInt(1))
}

// EncodeCert returns a DER certificate as PEM.
func EncodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// EncodeKey returns a private key (ECDSA or ed25519) as PKCS#8 PEM.
func EncodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// DecodeCert parses the first PEM certificate in data.
func DecodeCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate found")
	}
	return x509.ParseCertificate(block.Bytes)
}

// DecodeKey parses a PKCS#8 PEM private key.
func DecodeKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no PEM private key found")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", k)
	}
	return s, nil
}

// Save writes the CA's certificate (0644) and key (0600) atomically.
func (ca *CA) Save(certPath, keyPath string) error {
	keyPEM, err := EncodeKey(ca.Key)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return atomicfile.Write(certPath, ca.CertPEM, 0o644)
}

// MaxPEMBytes bounds every PEM file read: a CA certificate (or a bundle
// of them), a certificate, a key. A bundle of every public root CA is
// about 200 KiB.
const MaxPEMBytes = 1 << 20

// ReadPEMFile reads the regular file at path, at most MaxPEMBytes. what
// says what it is in errors ("CA certificate").
func ReadPEMFile(path, what string) ([]byte, error) {
	return readlimit.File(path, what, MaxPEMBytes)
}

// LoadKeyPair is tls.LoadX509KeyPair with the files read by ReadPEMFile.
func LoadKeyPair(certPath, keyPath string) (tls.Certificate, error) {
	certPEM, err := ReadPEMFile(certPath, "certificate")
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := ReadPEMFile(keyPath, "private key")
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s, %s: %w", certPath, keyPath, err)
	}
	return cert, nil
}

// LoadCA reads a CA written by Save.
func LoadCA(certPath, keyPath string) (*CA, error) {
	certPEM, err := ReadPEMFile(certPath, "CA certificate")
	if err != nil {
		return nil, err
	}
	cert, err := DecodeCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	keyPEM, err := ReadPEMFile(keyPath, "CA key")
	if err != nil {
		return nil, err
	}
	key, err := DecodeKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	return &CA{Cert: cert, CertPEM: certPEM, Key: key}, nil
}
