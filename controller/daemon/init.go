package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/keyring"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/atomicfile"
	"github.com/cairn-ops/cairn/internal/pki"
	"github.com/cairn-ops/cairn/internal/stamp"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// InitOptions says how to create a data directory.
type InitOptions struct {
	DataDir string
	// SANs are extra DNS names or IP addresses for the server certificate,
	// besides localhost, 127.0.0.1 and ::1.
	SANs []string
	// Admin names the first user (default "admin").
	Admin string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// InitResult is what init created that the operator needs to know.
type InitResult struct {
	Admin string
	// Token is the admin's API token. It is shown once; the store keeps
	// only its hash.
	Token   string
	TokenID string
	CAPath  string
}

// Init creates a controller data directory: CA, server certificate,
// release-signing key, store, the first admin user and its API token. It
// refuses a directory that already holds a store. The store is created
// last, under a temporary name renamed into place, so an init that fails
// part way can simply be run again.
func Init(ctx context.Context, opts InitOptions) (*InitResult, error) {
	if opts.DataDir == "" {
		return nil, errors.New("no data dir: set --data-dir")
	}
	if opts.Admin == "" {
		opts.Admin = "admin"
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	names, ips := []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	for _, san := range opts.SANs {
		switch ip := net.ParseIP(san); {
		case ip != nil:
			ips = append(ips, ip)
		case san != "" && !hasSpace(san):
			names = append(names, san)
		default:
			return nil, fmt.Errorf("--san %q: want a DNS name or an IP address", san)
		}
	}
	l := layout(opts.DataDir)
	if _, err := os.Stat(l.path(StoreFile)); err == nil {
		return nil, fmt.Errorf("%w: %s exists; refusing to overwrite a controller's data (use another --data-dir)", ErrInitialized, l.path(StoreFile))
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := os.Chmod(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict data dir: %w", err)
	}

	t := now()
	keys, err := keyring.Create(opts.DataDir, names, ips, t)
	if err != nil {
		return nil, err
	}
	ca := keys.IssuingCA()

	token, err := auth.NewToken(auth.TokenUser)
	if err != nil {
		return nil, err
	}
	tokenID, err := randomID("tok_")
	if err != nil {
		return nil, err
	}
	tmp := l.path(StoreFile + ".init")
	_ = os.Remove(tmp) // left by an init that failed
	st, err := store.OpenBolt(tmp, store.BoltOptions{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("create store: %w", err)
	}
	err = st.Update(ctx, func(tx store.Tx) error {
		at := stamp.Format(t)
		if _, err := auditlog.Append(tx, t, "system", "controller.init", "controller", map[string]string{
			"ca_serial": pki.SerialHex(ca.Cert),
			"sans":      fmt.Sprint(append(names, ipStrings(ips)...)),
		}); err != nil {
			return err
		}
		if err := tx.PutUser(&controllerv1.UserRecord{
			Name: opts.Admin, Roles: []string{auth.RoleAdmin}, CreatedBy: "system", CreatedAt: at,
		}); err != nil {
			return err
		}
		if _, err := auditlog.Append(tx, t, "system", "user.create", "user/"+opts.Admin, map[string]string{"roles": auth.RoleAdmin}); err != nil {
			return err
		}
		if err := tx.PutAPIToken(&controllerv1.APITokenRecord{
			Id: tokenID, User: opts.Admin, TokenHash: auth.HashToken(token), CreatedBy: "system", CreatedAt: at,
		}); err != nil {
			return err
		}
		_, err := auditlog.Append(tx, t, "system", "token.create", "token/"+tokenID, map[string]string{"user": opts.Admin})
		return err
	})
	if cerr := st.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("initialize store: %w", err)
	}
	if err := os.Rename(tmp, l.path(StoreFile)); err != nil {
		return nil, fmt.Errorf("create store: %w", err)
	}
	if err := atomicfile.SyncDir(opts.DataDir); err != nil {
		return nil, err
	}
	return &InitResult{Admin: opts.Admin, Token: token, TokenID: tokenID, CAPath: l.path(CACertFile)}, nil
}

func randomID(prefix string) (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random ID: %w", err)
	}
	return prefix + hex.EncodeToString(b), nil
}

func ipStrings(ips []net.IP) []string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return s
}

func hasSpace(s string) bool {
	for _, r := range s {
		if r == ' ' || r == '\t' || r == '\n' || r == ',' || r == '/' {
			return true
		}
	}
	return false
}
