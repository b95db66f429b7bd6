package session

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"time"

	"github.com/cairn-ops/cairn/internal/atomicfile"
	"github.com/cairn-ops/cairn/internal/pki"
	"github.com/cairn-ops/cairn/internal/readlimit"
	"github.com/cairn-ops/cairn/internal/release"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// TrustFile holds what the controller last told the agent to trust (its
// CAs and release keys, each with when it retires). Until the controller
// sends one, the agent trusts the CA it pinned at enrollment (ca.pem)
// and the release key of identity.json.
const TrustFile = "trust.json"

// Limits on a Trust the controller sends: a rotation adds one CA or key,
// and retired CAs are dropped, so these leave room for many rotations.
const (
	maxTrustedCAs  = 16
	maxTrustedKeys = 64
	// maxTrustBytes bounds trust.json: 16 certificates of a few KiB.
	maxTrustBytes = 1 << 20
)

// Trust is what the agent trusts of its controller: the CAs that vouch
// for the controller's certificate, the last of which issues node
// certificates now, and the release keys that verify releases. Each
// counts until it retires (the end of a rotation's overlap).
type Trust struct {
	CAs         []TrustedCA
	ReleaseKeys release.Keys
}

// TrustedCA is a CA the agent accepts the controller's certificate from,
// until RetiresAt (zero: no end).
type TrustedCA struct {
	Cert      *x509.Certificate
	RetiresAt time.Time
}

// Pool returns the CAs not retired at now.
func (t *Trust) Pool(now time.Time) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, ca := range t.CAs {
		if ca.RetiresAt.IsZero() || now.Before(ca.RetiresAt) {
			pool.AddCert(ca.Cert)
		}
	}
	return pool
}

// Issuing returns the CA that issues node certificates now: the newest.
func (t *Trust) Issuing() *x509.Certificate {
	return t.CAs[len(t.CAs)-1].Cert
}

// Equal reports whether t and o trust the same.
func (t *Trust) Equal(o *Trust) bool {
	return slices.EqualFunc(t.CAs, o.CAs, func(a, b TrustedCA) bool {
		return a.Cert.Equal(b.Cert) && a.RetiresAt.Equal(b.RetiresAt)
	}) && slices.EqualFunc(t.ReleaseKeys, o.ReleaseKeys, func(a, b release.Key) bool {
		return a.Public.Equal(b.Public) && a.RetiresAt.Equal(b.RetiresAt)
	})
}

// trustFile is trust.json.
type trustFile struct {
	CAs []struct {
		CertificatePEM string    `json:"certificate_pem"`
		RetiresAt      time.Time `json:"retires_at,omitzero"`
	} `json:"cas"`
	ReleaseKeys []struct {
		PublicKey []byte    `json:"public_key"`
		RetiresAt time.Time `json:"retires_at,omitzero"`
	} `json:"release_keys"`
}

// LoadTrust reads dir/trust.json or, when the controller never sent one,
// trusts the CA pinned at enrollment and id's release key.
func LoadTrust(dir string, id *Identity) (*Trust, error) {
	path := filepath.Join(dir, TrustFile)
	data, err := readlimit.File(path, "trust", maxTrustBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return enrolledTrust(dir, id)
	}
	if err != nil {
		return nil, err
	}
	var f trustFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	t := &Trust{}
	for i, c := range f.CAs {
		cert, err := pki.DecodeCert([]byte(c.CertificatePEM))
		if err != nil {
			return nil, fmt.Errorf("read %s: cas[%d]: %w", path, i, err)
		}
		t.CAs = append(t.CAs, TrustedCA{Cert: cert, RetiresAt: c.RetiresAt})
	}
	for _, k := range f.ReleaseKeys {
		t.ReleaseKeys = append(t.ReleaseKeys, release.Key{Public: ed25519.PublicKey(k.PublicKey), RetiresAt: k.RetiresAt})
	}
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return t, nil
}

// enrolledTrust is the trust of an agent the controller has sent none:
// the CA pinned at enrollment and the identity's release key.
func enrolledTrust(dir string, id *Identity) (*Trust, error) {
	caPEM, err := pki.ReadPEMFile(filepath.Join(dir, CAFile), "pinned CA")
	if err != nil {
		return nil, err
	}
	t, err := pinnedTrust(caPEM, id.ReleasePublicKey)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return t, nil
}

// pinnedTrust trusts one CA (PEM) and, when given, one raw release key,
// neither retiring: what a controller without rotation hands an agent.
func pinnedTrust(caPEM, releaseKey []byte) (*Trust, error) {
	ca, err := pki.DecodeCert(caPEM)
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	t := &Trust{CAs: []TrustedCA{{Cert: ca}}}
	if len(releaseKey) > 0 {
		key, err := release.PublicKey(releaseKey)
		if err != nil {
			return nil, err
		}
		t.ReleaseKeys = release.SingleKey(key)
	}
	return t, nil
}

// saveTrust writes dir/trust.json atomically: a crash leaves the old
// trust or the new one, never a mix.
func saveTrust(dir string, t *Trust) error {
	var f trustFile
	for _, ca := range t.CAs {
		f.CAs = append(f.CAs, struct {
			CertificatePEM string    `json:"certificate_pem"`
			RetiresAt      time.Time `json:"retires_at,omitzero"`
		}{string(pki.EncodeCert(ca.Cert.Raw)), ca.RetiresAt.UTC()})
	}
	for _, k := range t.ReleaseKeys {
		f.ReleaseKeys = append(f.ReleaseKeys, struct {
			PublicKey []byte    `json:"public_key"`
			RetiresAt time.Time `json:"retires_at,omitzero"`
		}{k.Public, k.RetiresAt.UTC()})
	}
	data, err := json.MarshalIndent(&f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode trust: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, TrustFile), append(data, '\n'), filePerm); err != nil {
		return fmt.Errorf("save trust: %w", err)
	}
	return nil
}

// trustFromProto checks what the controller sent: at least one CA and
// one release key, within the limits, every CA a CA certificate, every
// key an ed25519 key, every time RFC 3339.
func trustFromProto(m *agentv1.Trust) (*Trust, error) {
	if len(m.GetCas()) > maxTrustedCAs || len(m.GetReleaseKeys()) > maxTrustedKeys {
		return nil, fmt.Errorf("%d CAs and %d release keys: at most %d and %d", len(m.GetCas()), len(m.GetReleaseKeys()), maxTrustedCAs, maxTrustedKeys)
	}
	t := &Trust{}
	for i, c := range m.GetCas() {
		cert, err := x509.ParseCertificate(c.GetCertificateDer())
		if err != nil {
			return nil, fmt.Errorf("cas[%d]: %w", i, err)
		}
		at, err := retiresAt(c.GetRetiresAt())
		if err != nil {
			return nil, fmt.Errorf("cas[%d]: %w", i, err)
		}
		t.CAs = append(t.CAs, TrustedCA{Cert: cert, RetiresAt: at})
	}
	for i, k := range m.GetReleaseKeys() {
		at, err := retiresAt(k.GetRetiresAt())
		if err != nil {
			return nil, fmt.Errorf("release_keys[%d]: %w", i, err)
		}
		t.ReleaseKeys = append(t.ReleaseKeys, release.Key{Public: ed25519.PublicKey(bytes.Clone(k.GetPublicKey())), RetiresAt: at})
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	return t, nil
}

// check refuses a trust that would leave the agent unable to verify its
// controller or any release.
func (t *Trust) check() error {
	if len(t.CAs) == 0 {
		return errors.New("no CA")
	}
	if len(t.ReleaseKeys) == 0 {
		return errors.New("no release key")
	}
	for i, ca := range t.CAs {
		if !ca.Cert.IsCA {
			return fmt.Errorf("cas[%d] (%s) is not a CA certificate", i, ca.Cert.Subject)
		}
	}
	for i, k := range t.ReleaseKeys {
		if len(k.Public) != ed25519.PublicKeySize {
			return fmt.Errorf("release_keys[%d] has %d bytes, want %d", i, len(k.Public), ed25519.PublicKeySize)
		}
	}
	return nil
}

func retiresAt(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("retires_at %q: want an RFC 3339 time", s)
	}
	return t, nil
}
