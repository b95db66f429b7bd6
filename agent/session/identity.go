package session

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-ops/cairn/internal/atomicfile"
	"github.com/cairn-ops/cairn/internal/pki"
	"github.com/cairn-ops/cairn/internal/readlimit"
)

// Files in the agent's data directory.
const (
	KeyFile      = "node-key.pem"
	CertFile     = "node.pem"
	CAFile       = "ca.pem"
	IdentityFile = "identity.json"
	StateFile    = "state.json"

	// pendingSuffix marks a renewed key or certificate written but not yet
	// moved into place; LoadCredentials finishes the move after a crash.
	pendingSuffix = ".new"
)

// filePerm is the mode of every file in the data directory.
const filePerm = 0o600

// Identity is who the agent is and whom it talks to. It is written last
// at enrollment: its presence means the agent is enrolled.
type Identity struct {
	NodeID     string `json:"node_id"`
	Controller string `json:"controller"`
	// ReleasePublicKey is the controller's ed25519 release-signing key.
	ReleasePublicKey []byte    `json:"release_public_key"`
	EnrolledAt       time.Time `json:"enrolled_at"`
}

// maxIdentityBytes bounds identity.json: a node ID, an address, a key.
const maxIdentityBytes = 64 << 10

// LoadIdentity reads dir/identity.json. It returns ErrNotEnrolled when
// the file does not exist.
func LoadIdentity(dir string) (*Identity, error) {
	path := filepath.Join(dir, IdentityFile)
	data, err := readlimit.File(path, "identity", maxIdentityBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no %s in %s", ErrNotEnrolled, IdentityFile, dir)
	}
	if err != nil {
		return nil, err
	}
	var id Identity
	if err := json.Unmarshal(data, &id); err != nil {
		return nil, fmt.Errorf("read identity %s: %w", path, err)
	}
	if id.NodeID == "" || id.Controller == "" {
		return nil, fmt.Errorf("read identity %s: node_id or controller missing", path)
	}
	return &id, nil
}

// SaveIdentity writes dir/identity.json atomically with mode 0600.
func SaveIdentity(dir string, id *Identity) error {
	data, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return fmt.Errorf("encode identity: %w", err)
	}
	return atomicfile.Write(filepath.Join(dir, IdentityFile), append(data, '\n'), filePerm)
}

// Credentials are the node's TLS key and certificate, read from the
// data directory. What the node trusts of the controller is its Trust.
type Credentials struct {
	Cert tls.Certificate
	// Leaf is Cert's parsed certificate.
	Leaf *x509.Certificate
}

// LoadCredentials reads the node key and certificate from dir, first
// finishing a certificate renewal a crash interrupted.
func LoadCredentials(dir string) (*Credentials, error) {
	if err := commitPending(dir); err != nil {
		return nil, err
	}
	read := func(name string) ([]byte, error) {
		return pki.ReadPEMFile(filepath.Join(dir, name), "node credentials")
	}
	keyPEM, err := read(KeyFile)
	if err != nil {
		return nil, err
	}
	certPEM, err := read(CertFile)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("node key and certificate in %s: %w", dir, err)
	}
	return &Credentials{Cert: cert, Leaf: cert.Leaf}, nil
}

// saveNew writes a new node key and certificate so that a crash at any
// point leaves a matching pair: both go to pending files first, then the
// key and then the certificate are renamed into place. commitPending
// finishes an interrupted sequence.
func saveNew(dir string, key crypto.Signer, certDER []byte) error {
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return err
	}
	keyNew := filepath.Join(dir, KeyFile+pendingSuffix)
	certNew := filepath.Join(dir, CertFile+pendingSuffix)
	if err := atomicfile.Write(keyNew, keyPEM, filePerm); err != nil {
		return err
	}
	if err := atomicfile.Write(certNew, pki.EncodeCert(certDER), filePerm); err != nil {
		return err
	}
	return commitPending(dir)
}

// commitPending moves pending renewal files into place. Both pending
// files present: rename the key, then the certificate. Only the
// certificate: the key was already renamed, finish with the certificate.
// Only the key: the crash came before the certificate was written, so the
// old pair is still whole and the stray key is removed.
func commitPending(dir string) error {
	keyNew := filepath.Join(dir, KeyFile+pendingSuffix)
	certNew := filepath.Join(dir, CertFile+pendingSuffix)
	haveKey, haveCert := exists(keyNew), exists(certNew)
	switch {
	case !haveKey && !haveCert:
		return nil
	case haveKey && !haveCert:
		if err := os.Remove(keyNew); err != nil {
			return fmt.Errorf("remove unfinished renewal: %w", err)
		}
		return atomicfile.SyncDir(dir)
	}
	if haveKey {
		if err := os.Rename(keyNew, filepath.Join(dir, KeyFile)); err != nil {
			return fmt.Errorf("install renewed key: %w", err)
		}
	}
	if err := os.Rename(certNew, filepath.Join(dir, CertFile)); err != nil {
		return fmt.Errorf("install renewed certificate: %w", err)
	}
	return atomicfile.SyncDir(dir)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
