package keyring

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/internal/atomicfile"
	"github.com/cairn-ops/cairn/internal/pki"
	"github.com/cairn-ops/cairn/internal/release"
	"github.com/cairn-ops/cairn/internal/stamp"
)

// Limits of a rotation's overlap: long enough for agents to connect and
// learn of the new CA or key, short enough that a retired key does not
// linger for years.
const (
	MinOverlap     = time.Minute
	MaxOverlap     = 400 * 24 * time.Hour
	DefaultOverlap = 7 * 24 * time.Hour
)

// ErrNoRotation means Finish found nothing in its overlap.
var ErrNoRotation = errors.New("no rotation in its overlap")

// Kind is what a rotation replaces.
type Kind string

// Kinds of rotation.
const (
	KindCA         Kind = "ca"
	KindSigningKey Kind = "signing-key"
)

// Change says who changes the keyring and when.
type Change struct {
	Now time.Time
	// By names who ran the rotation (the operating-system user), for the
	// audit log.
	By string
	// Overlap is how long the old CA or key stays accepted (Rotate only).
	Overlap time.Duration
}

// Rotate adds a new CA (KindCA) or release-signing key (KindSigningKey)
// to the keyring in dir: it is used from c.Now on, and the ones before it
// retire c.Overlap later (one already retiring earlier keeps its time). A
// new CA comes with a server certificate for the same names as the
// controller's current one.
func Rotate(dir string, kind Kind, c Change) (*Keyring, error) {
	if c.Overlap < MinOverlap || c.Overlap > MaxOverlap {
		return nil, fmt.Errorf("overlap %s: give between %s and %s", c.Overlap, MinOverlap, MaxOverlap)
	}
	return change(dir, c, func(f *fileKeyring, k *Keyring) (string, map[string]string, error) {
		ends := c.Now.Add(c.Overlap)
		switch kind {
		case KindCA:
			serial, retiring, err := addCA(dir, f, k, c.Now, ends)
			if err != nil {
				return "", nil, err
			}
			return "ca.rotate", map[string]string{"ca_serial": serial, "retiring": strings.Join(retiring, ","), "overlap_ends": stamp.Optional(ends)}, nil
		case KindSigningKey:
			id, retiring, err := addReleaseKey(dir, f, c.Now, ends)
			if err != nil {
				return "", nil, err
			}
			return "signing-key.rotate", map[string]string{"release_key": id, "retiring": strings.Join(retiring, ","), "overlap_ends": stamp.Optional(ends)}, nil
		}
		return "", nil, fmt.Errorf("unknown rotation %q: want %s or %s", kind, KindCA, KindSigningKey)
	})
}

// Finish ends the overlap of a rotation now: the CAs (or release keys)
// before the newest retire at c.Now. It fails with ErrNoRotation when
// none is in its overlap.
func Finish(dir string, kind Kind, c Change) (*Keyring, error) {
	return change(dir, c, func(f *fileKeyring, _ *Keyring) (string, map[string]string, error) {
		entries := f.entries(kind)
		if entries == nil {
			return "", nil, fmt.Errorf("unknown rotation %q: want %s or %s", kind, KindCA, KindSigningKey)
		}
		// Every one but the newest, which is in use.
		ended := retireBy(entries[:len(entries)-1], c.Now, c.Now)
		if len(ended) == 0 {
			return "", nil, fmt.Errorf("%w: no %s is retiring", ErrNoRotation, kind)
		}
		return string(kind) + ".rotate.finish", map[string]string{"retired": strings.Join(ended, ",")}, nil
	})
}

// change runs one change of the keyring in dir under its lock: edit
// changes keys.json's contents (writing new key files as it goes) and
// says what it did, then keys.json is replaced atomically and the
// derived files are written.
func change(dir string, c Change, edit func(f *fileKeyring, k *Keyring) (action string, details map[string]string, err error)) (*Keyring, error) {
	unlock, err := lock(filepath.Join(dir, lockFile))
	if err != nil {
		return nil, err
	}
	defer unlock()
	k, err := Load(dir)
	if err != nil {
		return nil, err
	}
	f, err := current(dir, k)
	if err != nil {
		return nil, err
	}
	action, details, err := edit(f, k)
	if err != nil {
		return nil, err
	}
	f.Generation++
	f.Events = append(f.Events, Event{Generation: f.Generation, At: c.Now.UTC(), By: c.By, Action: action, Details: details})
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", File, err)
	}
	if err := atomicfile.Write(filepath.Join(dir, File), append(data, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", File, err)
	}
	if err := Repair(dir, c.Now); err != nil {
		return nil, fmt.Errorf("the rotation is done (%s), but: %w: run the rotation's command again or restart the controller to finish", File, err)
	}
	return Load(dir)
}

// current is keys.json as it is, or, for a directory never rotated, the
// keys.json that names copies of init's files under keys/ (written
// here; the originals are removed by Repair once keys.json exists).
func current(dir string, k *Keyring) (*fileKeyring, error) {
	f, err := readFile(dir)
	if !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	ca, rk := k.CAs[0], k.ReleaseKeys[0]
	serverKey, ok := ca.Server.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: %T is not a signing key", LegacyServerKey, ca.Server.PrivateKey)
	}
	files, err := writeCA(dir, ca.CA, ca.Server.Certificate[0], serverKey)
	if err != nil {
		return nil, err
	}
	keyFile, err := writeReleaseKey(dir, rk.Key)
	if err != nil {
		return nil, err
	}
	return &fileKeyring{
		CAs:         []fileCA{{Serial: ca.Serial, caFiles: files, AddedAt: ca.AddedAt.UTC()}},
		ReleaseKeys: []fileKey{{ID: rk.ID, Key: keyFile, AddedAt: ca.AddedAt.UTC()}},
	}, nil
}

// entry is a CA or release key of keys.json as a rotation sees it: its
// name and when it retires.
type entry struct {
	name      string
	retiresAt *time.Time
}

// entries are f's CAs (KindCA) or release keys (KindSigningKey), oldest
// first; nil for another kind.
func (f *fileKeyring) entries(kind Kind) []entry {
	var out []entry
	switch kind {
	case KindCA:
		for i := range f.CAs {
			out = append(out, entry{f.CAs[i].Serial, &f.CAs[i].RetiresAt})
		}
	case KindSigningKey:
		for i := range f.ReleaseKeys {
			out = append(out, entry{f.ReleaseKeys[i].ID, &f.ReleaseKeys[i].RetiresAt})
		}
	}
	return out
}

// retireBy makes each entry not retired at now retire at ends, unless it
// retires earlier, and returns their names. Retired ones stay as they
// are.
func retireBy(entries []entry, now, ends time.Time) []string {
	var names []string
	for _, e := range entries {
		if retired(*e.retiresAt, now) {
			continue
		}
		if e.retiresAt.IsZero() || e.retiresAt.After(ends) {
			*e.retiresAt = ends
		}
		names = append(names, e.name)
	}
	return names
}

// addCA makes a new CA and its server certificate, for the names of the
// certificate the controller presents now, and appends it to f; the CAs
// before it retire at ends unless they retire earlier. It returns the new
// serial and the serials of the CAs in their overlap.
func addCA(dir string, f *fileKeyring, k *Keyring, now, ends time.Time) (string, []string, error) {
	ca, err := pki.NewCA("Cairn controller CA "+now.UTC().Format("2006-01-02 15:04:05"), now)
	if err != nil {
		return "", nil, err
	}
	leaf := k.ServerCertificate(now).Leaf
	certPEM, keyPEM, err := ca.IssueServer(leaf.DNSNames, leaf.IPAddresses, now)
	if err != nil {
		return "", nil, err
	}
	der, _ := pem.Decode(certPEM)
	key, err := pki.DecodeKey(keyPEM)
	if err != nil {
		return "", nil, err
	}
	files, err := writeCA(dir, ca, der.Bytes, key)
	if err != nil {
		return "", nil, err
	}
	retiring := retireBy(f.entries(KindCA), now, ends)
	serial := pki.SerialHex(ca.Cert)
	f.CAs = append(f.CAs, fileCA{Serial: serial, caFiles: files, AddedAt: now.UTC()})
	return serial, retiring, nil
}

// addReleaseKey makes a new release-signing key and appends it to f; the
// keys before it retire at ends unless they retire earlier.
func addReleaseKey(dir string, f *fileKeyring, now, ends time.Time) (string, []string, error) {
	key, err := pki.NewReleaseKey()
	if err != nil {
		return "", nil, err
	}
	file, err := writeReleaseKey(dir, key)
	if err != nil {
		return "", nil, err
	}
	retiring := retireBy(f.entries(KindSigningKey), now, ends)
	id := release.KeyID(key.Public().(ed25519.PublicKey))
	f.ReleaseKeys = append(f.ReleaseKeys, fileKey{ID: id, Key: file, AddedAt: now.UTC()})
	return id, retiring, nil
}

// writeCA writes a CA and its server certificate under keys/, named by
// the CA's serial, and returns their names.
func writeCA(dir string, ca *pki.CA, serverDER []byte, serverKey crypto.Signer) (caFiles, error) {
	serial := pki.SerialHex(ca.Cert)
	files := caFiles{
		Cert:       Dir + "/ca-" + serial + ".pem",
		Key:        Dir + "/ca-" + serial + "-key.pem",
		ServerCert: Dir + "/server-" + serial + ".pem",
		ServerKey:  Dir + "/server-" + serial + "-key.pem",
	}
	caKey, err := pki.EncodeKey(ca.Key)
	if err != nil {
		return caFiles{}, err
	}
	srvKey, err := pki.EncodeKey(serverKey)
	if err != nil {
		return caFiles{}, err
	}
	for _, w := range []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{files.Key, caKey, 0o600},
		{files.Cert, pki.EncodeCert(ca.Cert.Raw), 0o644},
		{files.ServerKey, srvKey, 0o600},
		{files.ServerCert, pki.EncodeCert(serverDER), 0o644},
	} {
		if err := writeKeyFile(dir, w.name, w.data, w.perm); err != nil {
			return caFiles{}, err
		}
	}
	return files, nil
}

// writeReleaseKey writes a release key under keys/, named by its ID.
func writeReleaseKey(dir string, key ed25519.PrivateKey) (string, error) {
	name := Dir + "/release-" + release.KeyID(key.Public().(ed25519.PublicKey)) + ".pem"
	data, err := pki.EncodeKey(key)
	if err != nil {
		return "", err
	}
	return name, writeKeyFile(dir, name, data, 0o600)
}

// writeKeyFile writes one file under dir/keys (0700), atomically.
func writeKeyFile(dir, name string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Join(dir, Dir), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", Dir, err)
	}
	if err := atomicfile.Write(filepath.Join(dir, name), data, perm); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// writeIfChanged writes the PEM file path atomically unless it holds
// data already.
func writeIfChanged(path string, data []byte, perm os.FileMode) error {
	if old, err := pki.ReadPEMFile(path, "derived PEM file"); err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := atomicfile.Write(path, data, perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// publicKeyPEM is a release key's public key as release.pub.pem holds it
// (PKIX).
func publicKeyPEM(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("encode release public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
