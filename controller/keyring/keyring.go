// Package keyring is the controller's key material and its rotation: the
// CAs that issue node certificates (each with the TLS certificate it
// issued for the controller itself) and the ed25519 keys that sign
// releases.
//
// Rotating (cairn-controller rotate ca | signing-key) adds a new CA or
// key, which is used from then on, and gives the ones before it an end of
// overlap: until then agents and the controller accept both, after it
// only the new one. During a CA's overlap the controller still presents
// the server certificate of the oldest CA not retired, so agents that
// have not heard of the new CA yet can connect and learn of it; node
// certificates are issued by the newest. After the overlap the old CA's
// server certificate is no longer presented and node certificates it
// issued are refused with refusal.CertificateRetired; releases an old key
// signed are refused with release.ErrKeyRetired.
//
// Files in the data directory:
//
//	keys.json                    the keyring: its CAs and release keys, oldest first, when each
//	                             retires, and the rotations (events) that made it
//	keys/ca-SERIAL.pem           a CA certificate
//	keys/ca-SERIAL-key.pem       its key (0600)
//	keys/server-SERIAL.pem       the controller's TLS certificate that CA issued
//	keys/server-SERIAL-key.pem   its key (0600)
//	keys/release-ID.pem          a release-signing key (0600), ID: release.KeyID
//	ca.pem                       the CAs not retired, for cairnctl and enrolling agents
//	release.pub.pem              the release public key in use
//	keys.lock                    held while a rotation runs
//
// A data directory that was never rotated has no keys.json: its one CA
// is ca.pem and ca-key.pem with server.pem and server-key.pem, its one
// release key release-key.pem (as cairn-controller init writes them). The
// first rotation copies them under keys/.
//
// A rotation writes the new files first and keys.json last, atomically:
// a rotation that dies before keys.json is replaced left the keyring as
// it was (and files nothing names, which the next rotation ignores), one
// that dies after it is done. ca.pem and release.pub.pem are derived from
// keys.json; Repair writes them again, so a crash between keys.json and
// them heals at the next rotation or serve.
package keyring

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/cairn-ops/cairn/internal/pki"
	"github.com/cairn-ops/cairn/internal/readlimit"
	"github.com/cairn-ops/cairn/internal/release"
	"github.com/cairn-ops/cairn/internal/stamp"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// Files of the data directory the keyring owns.
const (
	File           = "keys.json"
	Dir            = "keys"
	BundleFile     = "ca.pem"
	ReleasePubFile = "release.pub.pem"
	lockFile       = "keys.lock"
)

// The files of a data directory that was never rotated (cairn-controller
// init writes these).
const (
	LegacyCACert     = "ca.pem"
	LegacyCAKey      = "ca-key.pem"
	LegacyServerCert = "server.pem"
	LegacyServerKey  = "server-key.pem"
	LegacyReleaseKey = "release-key.pem"
)

// maxFileBytes bounds keys.json: a few hundred bytes per CA, key and
// event.
const maxFileBytes = 1 << 20

// Keyring is the controller's key material at one generation. It is
// never changed once loaded; a rotation makes a new one.
type Keyring struct {
	// Generation counts the rotations: 0 for a data directory never
	// rotated.
	Generation uint64
	// CAs are oldest first; the last one issues node certificates.
	CAs []*CA
	// ReleaseKeys are oldest first; the last one signs releases.
	ReleaseKeys []*ReleaseKey
	// Events are the rotations that made the keyring, oldest first.
	Events []Event
}

// CA is one CA of the keyring.
type CA struct {
	*pki.CA
	Serial string
	// Server is the controller's TLS certificate this CA issued.
	Server    tls.Certificate
	AddedAt   time.Time
	RetiresAt time.Time // zero: no end
	files     caFiles
}

// ReleaseKey is one release-signing key of the keyring.
type ReleaseKey struct {
	ID        string
	Key       ed25519.PrivateKey
	AddedAt   time.Time
	RetiresAt time.Time // zero: no end
	file      string
}

// Event is one change of the keyring, for the audit log.
type Event struct {
	Generation uint64            `json:"generation"`
	At         time.Time         `json:"at"`
	By         string            `json:"by"`
	Action     string            `json:"action"`
	Details    map[string]string `json:"details,omitempty"`
}

// retired reports whether something retiring at at is retired at now.
func retired(at, now time.Time) bool {
	return !at.IsZero() && !now.Before(at)
}

// IssuingCA is the CA that issues node certificates now.
func (k *Keyring) IssuingCA() *pki.CA {
	return k.CAs[len(k.CAs)-1].CA
}

// serving is the CA whose server certificate the controller presents at
// now: the oldest not retired, so that agents that have not learnt of a
// newer CA still trust it.
func (k *Keyring) serving(now time.Time) *CA {
	for _, ca := range k.CAs {
		if !retired(ca.RetiresAt, now) {
			return ca
		}
	}
	return k.CAs[len(k.CAs)-1]
}

// ServerCertificate is the TLS certificate the controller presents at
// now.
func (k *Keyring) ServerCertificate(now time.Time) *tls.Certificate {
	return &k.serving(now).Server
}

// ClientCAs verify node certificates in the TLS handshake: every CA of
// the keyring, retired ones too, so that a certificate of a retired CA
// reaches the authorization layer and is refused there with its reason
// (Retired) instead of a bare TLS alert.
func (k *Keyring) ClientCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	for _, ca := range k.CAs {
		pool.AddCert(ca.Cert)
	}
	return pool
}

// Retired reports whether ca is a CA of the keyring whose overlap has
// ended at now, and when it ended.
func (k *Keyring) Retired(ca *x509.Certificate, now time.Time) (time.Time, bool) {
	for _, c := range k.CAs {
		if c.Cert.Equal(ca) {
			return c.RetiresAt, retired(c.RetiresAt, now)
		}
	}
	return time.Time{}, false
}

// SigningKey is the key that signs releases sealed now.
func (k *Keyring) SigningKey() ed25519.PrivateKey {
	return k.ReleaseKeys[len(k.ReleaseKeys)-1].Key
}

// PublicKeys are the release keys signatures are checked with, retired
// ones too (they are refused by name).
func (k *Keyring) PublicKeys() release.Keys {
	out := make(release.Keys, len(k.ReleaseKeys))
	for i, rk := range k.ReleaseKeys {
		out[i] = release.Key{Public: rk.Key.Public().(ed25519.PublicKey), RetiresAt: rk.RetiresAt}
	}
	return out
}

// Trust is what agents are told to trust at now: the CAs not retired
// (oldest first, the issuing one last) and every release key.
func (k *Keyring) Trust(now time.Time) *agentv1.Trust {
	t := &agentv1.Trust{}
	for _, ca := range k.CAs {
		if !retired(ca.RetiresAt, now) {
			t.Cas = append(t.Cas, &agentv1.TrustedCA{CertificateDer: ca.Cert.Raw, RetiresAt: stamp.Optional(ca.RetiresAt)})
		}
	}
	for _, rk := range k.ReleaseKeys {
		t.ReleaseKeys = append(t.ReleaseKeys, &agentv1.TrustedReleaseKey{PublicKey: rk.Key.Public().(ed25519.PublicKey), RetiresAt: stamp.Optional(rk.RetiresAt)})
	}
	return t
}

// Bundle is ca.pem at now: the certificates of the CAs not retired, PEM,
// oldest first.
func (k *Keyring) Bundle(now time.Time) []byte {
	var b bytes.Buffer
	for _, ca := range k.CAs {
		if !retired(ca.RetiresAt, now) {
			b.Write(pki.EncodeCert(ca.Cert.Raw))
		}
	}
	return b.Bytes()
}

// fileKeyring is keys.json.
type fileKeyring struct {
	Generation  uint64    `json:"generation"`
	CAs         []fileCA  `json:"cas"`
	ReleaseKeys []fileKey `json:"release_keys"`
	Events      []Event   `json:"events,omitempty"`
}

type caFiles struct {
	Cert       string `json:"cert"`
	Key        string `json:"key"`
	ServerCert string `json:"server_cert"`
	ServerKey  string `json:"server_key"`
}

type fileCA struct {
	Serial string `json:"serial"`
	caFiles
	AddedAt   time.Time `json:"added_at"`
	RetiresAt time.Time `json:"retires_at,omitzero"`
}

type fileKey struct {
	ID        string    `json:"id"`
	Key       string    `json:"key"`
	AddedAt   time.Time `json:"added_at"`
	RetiresAt time.Time `json:"retires_at,omitzero"`
}

// fileName is what keys.json may name: a file under keys/.
var fileName = regexp.MustCompile(`^keys/[a-z0-9-]{1,80}\.pem$`)

// Load reads the keyring of the data directory dir: keys.json and the
// files it names, or, in a directory never rotated, the files init wrote.
// Every file is checked: a CA is a CA, its server certificate chains to
// it, a key matches its certificate.
func Load(dir string) (*Keyring, error) {
	f, err := readFile(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return loadLegacy(dir)
	}
	if err != nil {
		return nil, err
	}
	return f.load(dir)
}

// readFile reads and checks keys.json.
func readFile(dir string) (*fileKeyring, error) {
	path := filepath.Join(dir, File)
	data, err := readlimit.File(path, "keyring", maxFileBytes)
	if err != nil {
		return nil, err
	}
	var f fileKeyring
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := f.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// check refuses a keys.json that names files outside keys/, has no CA or
// key, or whose newest CA or key retires.
func (f *fileKeyring) check() error {
	if len(f.CAs) == 0 {
		return errors.New("cas: no CA")
	}
	if len(f.ReleaseKeys) == 0 {
		return errors.New("release_keys: no release key")
	}
	for i, ca := range f.CAs {
		for field, name := range map[string]string{"cert": ca.Cert, "key": ca.Key, "server_cert": ca.ServerCert, "server_key": ca.ServerKey} {
			if !fileName.MatchString(name) {
				return fmt.Errorf("cas[%d].%s: %q is not a file under keys/", i, field, name)
			}
		}
	}
	for i, k := range f.ReleaseKeys {
		if !fileName.MatchString(k.Key) {
			return fmt.Errorf("release_keys[%d].key: %q is not a file under keys/", i, k.Key)
		}
	}
	if !f.CAs[len(f.CAs)-1].RetiresAt.IsZero() {
		return fmt.Errorf("cas[%d]: the newest CA issues certificates and cannot retire", len(f.CAs)-1)
	}
	if !f.ReleaseKeys[len(f.ReleaseKeys)-1].RetiresAt.IsZero() {
		return fmt.Errorf("release_keys[%d]: the newest key signs releases and cannot retire", len(f.ReleaseKeys)-1)
	}
	return nil
}

// load reads the files f names.
func (f *fileKeyring) load(dir string) (*Keyring, error) {
	k := &Keyring{Generation: f.Generation, Events: f.Events}
	for i, fc := range f.CAs {
		ca, err := loadCA(dir, fc.caFiles)
		if err != nil {
			return nil, fmt.Errorf("%s: cas[%d]: %w", filepath.Join(dir, File), i, err)
		}
		ca.AddedAt, ca.RetiresAt = fc.AddedAt, fc.RetiresAt
		if ca.Serial != fc.Serial {
			return nil, fmt.Errorf("%s: cas[%d]: %s has serial %s, not %s", filepath.Join(dir, File), i, fc.Cert, ca.Serial, fc.Serial)
		}
		k.CAs = append(k.CAs, ca)
	}
	for i, fk := range f.ReleaseKeys {
		rk, err := loadReleaseKey(dir, fk.Key)
		if err != nil {
			return nil, fmt.Errorf("%s: release_keys[%d]: %w", filepath.Join(dir, File), i, err)
		}
		if rk.ID != fk.ID {
			return nil, fmt.Errorf("%s: release_keys[%d]: %s is key %s, not %s", filepath.Join(dir, File), i, fk.Key, rk.ID, fk.ID)
		}
		rk.AddedAt, rk.RetiresAt = fk.AddedAt, fk.RetiresAt
		k.ReleaseKeys = append(k.ReleaseKeys, rk)
	}
	return k, nil
}

// loadLegacy reads a data directory never rotated.
func loadLegacy(dir string) (*Keyring, error) {
	ca, err := loadCA(dir, caFiles{Cert: LegacyCACert, Key: LegacyCAKey, ServerCert: LegacyServerCert, ServerKey: LegacyServerKey})
	if err != nil {
		return nil, err
	}
	rk, err := loadReleaseKey(dir, LegacyReleaseKey)
	if err != nil {
		return nil, err
	}
	ca.AddedAt = ca.Cert.NotBefore
	return &Keyring{CAs: []*CA{ca}, ReleaseKeys: []*ReleaseKey{rk}}, nil
}

// loadCA reads a CA and the server certificate it issued, and checks
// that they belong together.
func loadCA(dir string, files caFiles) (*CA, error) {
	ca, err := pki.LoadCA(filepath.Join(dir, files.Cert), filepath.Join(dir, files.Key))
	if err != nil {
		return nil, err
	}
	if !ca.Cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", files.Cert)
	}
	if pub, ok := ca.Key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(ca.Cert.PublicKey) {
		return nil, fmt.Errorf("%s is not the key of %s", files.Key, files.Cert)
	}
	server, err := pki.LoadKeyPair(filepath.Join(dir, files.ServerCert), filepath.Join(dir, files.ServerKey))
	if err != nil {
		return nil, err
	}
	if err := server.Leaf.CheckSignatureFrom(ca.Cert); err != nil {
		return nil, fmt.Errorf("%s was not issued by %s: %w", files.ServerCert, files.Cert, err)
	}
	return &CA{CA: ca, Serial: pki.SerialHex(ca.Cert), Server: server, files: files}, nil
}

// loadReleaseKey reads an ed25519 release key.
func loadReleaseKey(dir, name string) (*ReleaseKey, error) {
	path := filepath.Join(dir, name)
	data, err := pki.ReadPEMFile(path, "release key")
	if err != nil {
		return nil, err
	}
	key, err := pki.DecodeKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ed25519 key (%T)", path, key)
	}
	return &ReleaseKey{ID: release.KeyID(priv.Public().(ed25519.PublicKey)), Key: priv, file: name}, nil
}

// Repair writes the files derived from the keyring in dir at now (ca.pem,
// release.pub.pem) where they differ, and, once keys.json exists, removes
// the key files of a directory never rotated, which the first rotation
// copied under keys/. A rotation that died after writing keys.json is
// finished by it.
func Repair(dir string, now time.Time) error {
	k, err := Load(dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, File)); err != nil {
		return nil // never rotated: init's files are the keyring
	}
	pub, err := publicKeyPEM(k.ReleaseKeys[len(k.ReleaseKeys)-1].Key)
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{BundleFile: k.Bundle(now), ReleasePubFile: pub} {
		if err := writeIfChanged(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	for _, name := range []string{LegacyCAKey, LegacyServerCert, LegacyServerKey, LegacyReleaseKey} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s, now under %s/: %w", name, Dir, err)
		}
	}
	return nil
}

// Equal reports whether k and o are the same generation of the same
// material.
func (k *Keyring) Equal(o *Keyring) bool {
	return k.Generation == o.Generation &&
		slices.EqualFunc(k.CAs, o.CAs, func(a, b *CA) bool { return a.Cert.Equal(b.Cert) && a.RetiresAt.Equal(b.RetiresAt) }) &&
		slices.EqualFunc(k.ReleaseKeys, o.ReleaseKeys, func(a, b *ReleaseKey) bool { return a.Key.Equal(b.Key) && a.RetiresAt.Equal(b.RetiresAt) })
}
