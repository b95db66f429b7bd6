package keyring

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-ops/cairn/internal/atomicfile"
	"github.com/cairn-ops/cairn/internal/pki"
)

// Create writes the key material of a new data directory dir as one
// never rotated: a CA (ca.pem, ca-key.pem), the controller's TLS
// certificate from it for names and ips (server.pem, server-key.pem) and
// a release-signing key (release-key.pem, release.pub.pem). It is what
// cairn-controller init writes; the caller makes sure dir holds no
// controller yet.
func Create(dir string, names []string, ips []net.IP, now time.Time) (*Keyring, error) {
	ca, err := pki.NewCA("Cairn controller CA", now)
	if err != nil {
		return nil, err
	}
	if err := ca.Save(filepath.Join(dir, LegacyCACert), filepath.Join(dir, LegacyCAKey)); err != nil {
		return nil, fmt.Errorf("write CA: %w", err)
	}
	certPEM, keyPEM, err := ca.IssueServer(names, ips, now)
	if err != nil {
		return nil, err
	}
	key, err := pki.NewReleaseKey()
	if err != nil {
		return nil, err
	}
	releasePEM, err := pki.EncodeKey(key)
	if err != nil {
		return nil, err
	}
	pubPEM, err := publicKeyPEM(key)
	if err != nil {
		return nil, err
	}
	for _, w := range []struct {
		name, what string
		data       []byte
		perm       os.FileMode
	}{
		{LegacyServerKey, "server key", keyPEM, 0o600},
		{LegacyServerCert, "server certificate", certPEM, 0o644},
		{LegacyReleaseKey, "release key", releasePEM, 0o600},
		{ReleasePubFile, "release public key", pubPEM, 0o644},
	} {
		if err := atomicfile.Write(filepath.Join(dir, w.name), w.data, w.perm); err != nil {
			return nil, fmt.Errorf("write %s: %w", w.what, err)
		}
	}
	return Load(dir)
}
