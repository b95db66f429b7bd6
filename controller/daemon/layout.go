package daemon

import (
	"path/filepath"

	"github.com/cairn-ops/cairn/controller/keyring"
)

// Files in the data directory. The key material's are controller/keyring's:
// the CA, server and release-key files are those of a data directory never
// rotated; after a rotation they live under keys/ (keyring.File names
// them) and ca.pem holds every CA not retired.
const (
	CACertFile     = keyring.BundleFile
	CAKeyFile      = keyring.LegacyCAKey
	ServerCertFile = keyring.LegacyServerCert
	ServerKeyFile  = keyring.LegacyServerKey
	ReleaseKeyFile = keyring.LegacyReleaseKey
	ReleasePubFile = keyring.ReleasePubFile
	StoreFile      = "cairn.db"
	BlobDir        = "blobs"
	ConfigFileName = "config.yaml"
)

// layout names the files of one data directory.
type layout string

func (l layout) path(name string) string { return filepath.Join(string(l), name) }
