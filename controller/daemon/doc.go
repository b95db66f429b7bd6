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
package daemon
