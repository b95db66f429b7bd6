package keyring

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/pki"
	"github.com/cairn-ops/cairn/internal/release"
	"github.com/cairn-ops/cairn/internal/stamp"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// Live is the keyring a running controller uses: the latest one loaded
// from its data directory, replaced when a rotation changes keys.json
// (Reload). Its methods answer from the keyring current at the call.
type Live struct {
	dir string
	cur atomic.Pointer[Keyring]

	mu   sync.Mutex // serializes Reload
	seen fileStamp
}

// fileStamp is what Reload compares to tell that keys.json changed
// without reading it.
type fileStamp struct {
	exists  bool
	size    int64
	modTime time.Time
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileStamp{}, nil
	}
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{exists: true, size: fi.Size(), modTime: fi.ModTime()}, nil
}

// Open loads the keyring of dir and writes the files derived from it
// (Repair), finishing a rotation that died after writing keys.json.
func Open(dir string, now time.Time) (*Live, error) {
	if err := Repair(dir, now); err != nil {
		return nil, err
	}
	l := &Live{dir: dir}
	if _, err := l.Reload(now); err != nil {
		return nil, err
	}
	return l, nil
}

// Reload loads keys.json again when it changed since the last load, and
// reports whether the keyring changed. A keys.json that does not load
// leaves the current keyring in use and is an error.
func (l *Live) Reload(now time.Time) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, err := stampOf(filepath.Join(l.dir, File))
	if err != nil {
		return false, err
	}
	if st == l.seen && l.cur.Load() != nil {
		return false, nil
	}
	k, err := Load(l.dir)
	if err != nil {
		return false, err
	}
	old := l.cur.Load()
	if old != nil && k.Generation < old.Generation {
		return false, fmt.Errorf("%s went back from generation %d to %d (restored from a backup?): the keys of generation %d stay in use", File, old.Generation, k.Generation, old.Generation)
	}
	l.seen = st
	if old != nil && old.Equal(k) {
		return false, nil
	}
	l.cur.Store(k)
	if err := Repair(l.dir, now); err != nil {
		return true, err
	}
	return true, nil
}

// Keyring is the keyring in use.
func (l *Live) Keyring() *Keyring { return l.cur.Load() }

// IssuingCA is the CA that issues node certificates now.
func (l *Live) IssuingCA() *pki.CA { return l.Keyring().IssuingCA() }

// Trust is what agents are told to trust at now.
func (l *Live) Trust(now time.Time) *agentv1.Trust { return l.Keyring().Trust(now) }

// Generation is the keyring's generation.
func (l *Live) Generation() uint64 { return l.Keyring().Generation }

// Retired reports whether ca's overlap has ended at now, and when.
func (l *Live) Retired(ca *x509.Certificate, now time.Time) (time.Time, bool) {
	return l.Keyring().Retired(ca, now)
}

// SigningKey signs releases sealed now.
func (l *Live) SigningKey() ed25519.PrivateKey { return l.Keyring().SigningKey() }

// PublicKeys are the release keys signatures are checked with.
func (l *Live) PublicKeys() release.Keys { return l.Keyring().PublicKeys() }

// TLSConfig is the controller's server TLS configuration, decided per
// handshake from the keyring in use and now: the server certificate of
// the oldest CA not retired, and every CA of the keyring to verify node
// certificates with (the authorization layer refuses retired ones with
// their reason).
func (l *Live) TLSConfig(now func() time.Time) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			k := l.Keyring()
			return &tls.Config{
				Certificates: []tls.Certificate{*k.ServerCertificate(now())},
				ClientCAs:    k.ClientCAs(),
				// Operators and enrolling agents have no client
				// certificate; the auth interceptor decides per method
				// what it needs.
				ClientAuth: tls.VerifyClientCertIfGiven,
				MinVersion: tls.VersionTLS13,
			}, nil
		},
	}
}

// Record appends to the audit log the keyring's events it does not hold
// yet, in one transaction with the generation they bring it to: the
// rotations ran as separate commands (cairn-controller rotate) while the
// store was the running controller's, so the controller logs them when
// it loads them, at now, with the rotation's own time in the details.
// The actor is "local:USER", the operating-system user who ran the
// rotation. A keyring older than what the log holds (keys.json restored
// from a backup) is an error saying so; nothing is written.
func Record(ctx context.Context, st store.Store, k *Keyring, now time.Time) error {
	return st.Update(ctx, func(tx store.Tx) error {
		logged, err := tx.KeyringGeneration()
		if err != nil {
			return err
		}
		if logged > k.Generation {
			return fmt.Errorf("%s has generation %d, but the audit log holds rotations up to generation %d: was an older %s restored?", File, k.Generation, logged, File)
		}
		if logged == k.Generation {
			return nil
		}
		for _, e := range k.Events {
			if e.Generation <= logged {
				continue
			}
			details := maps.Clone(e.Details)
			if details == nil {
				details = map[string]string{}
			}
			details["rotated_at"] = stamp.Optional(e.At)
			details["generation"] = strconv.FormatUint(e.Generation, 10)
			if _, err := auditlog.Append(tx, now, "local:"+e.By, e.Action, "controller", details); err != nil {
				return err
			}
		}
		return tx.PutKeyringGeneration(k.Generation)
	})
}
