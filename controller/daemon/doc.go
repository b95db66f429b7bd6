// Package daemon is cairn-controller: its configuration, `init` (a new
// data directory with the CA, server certificate, release key, store and
// first admin token) and `serve` (the gRPC server for agents and
// operators, with mutual TLS, authorization, keepalive, health and
// optional Prometheus metrics).
//
// The data directory (0700) holds:
//
//	ca.pem, ca-key.pem (0600)            the CA that signs node certificates
//	server.pem, server-key.pem (0600)    the controller's TLS certificate
//	release-key.pem (0600)               ed25519 release-signing key, PKCS#8
//	release.pub.pem                      its public key, PKIX
//	cairn.db                             the store (bbolt)
//	blobs/                               content-addressed audits
//	config.yaml                          optional settings (see Config)
//
// After the first `rotate` the key material is controller/keyring's:
// keys.json names the CAs and release keys under keys/, ca.pem holds
// every CA not retired and release.pub.pem the key in use; ca-key.pem,
// server*.pem and release-key.pem are gone (copied under keys/). A
// running serve reloads keys.json when a rotation changes it.
package daemon
