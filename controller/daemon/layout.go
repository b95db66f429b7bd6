package daemon

import "path/filepath"

// Files in the data directory.
const (
	CACertFile     = "ca.pem"
	CAKeyFile      = "ca-key.pem"
	ServerCertFile = "server.pem"
	ServerKeyFile  = "server-key.pem"
	ReleaseKeyFile = "release-key.pem"
	ReleasePubFile = "release.pub.pem"
	StoreFile      = "cairn.db"
	BlobDir        = "blobs"
	ConfigFileName = "config.yaml"
)

// layout names the files of one data directory.
type layout string

func (l layout) path(name string) string { return filepath.Join(string(l), name) }
