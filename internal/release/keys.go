package release

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Key is a release public key a verifier accepts until RetiresAt; the
// zero RetiresAt means no end. A key is retired when the controller's
// signing key was rotated (cairn-controller rotate signing-key) and the
// overlap, in which releases signed by the old key still verify, has
// ended.
type Key struct {
	Public    ed25519.PublicKey
	RetiresAt time.Time
}

// Retired reports whether k no longer verifies signatures at now.
func (k Key) Retired(now time.Time) bool {
	return !k.RetiresAt.IsZero() && !now.Before(k.RetiresAt)
}

// Keys are the release keys a verifier knows, retired ones too: a
// signature by a retired key is refused by that key's name and
// retirement, not as an unknown signature.
type Keys []Key

// SingleKey is the Keys of one key that never retires.
func SingleKey(pub ed25519.PublicKey) Keys {
	return Keys{{Public: pub}}
}

// KeyID names a release public key: the first 16 hex digits of its
// sha256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// CheckSignature checks that sig is a signature of digest by a key of ks
// that is not retired at now. A signature by a retired key is
// ErrKeyRetired naming the key and when it retired; one by no key of ks is
// ErrUnsigned.
func (ks Keys) CheckSignature(digest string, sig []byte, now time.Time) error {
	if len(sig) == 0 {
		return fmt.Errorf("%w: there is no signature (was it sealed?)", ErrUnsigned)
	}
	var usable []string
	for _, k := range ks {
		if len(k.Public) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: a release public key has %d bytes, want %d", ErrUnsigned, len(k.Public), ed25519.PublicKeySize)
		}
		if !ed25519.Verify(k.Public, []byte(digest), sig) {
			if !k.Retired(now) {
				usable = append(usable, KeyID(k.Public))
			}
			continue
		}
		if k.Retired(now) {
			return fmt.Errorf("%w: digest %s was signed by release key %s, which retired at %s when the controller's signing key was rotated: seal a new version of the release with the current key",
				ErrKeyRetired, digest, KeyID(k.Public), k.RetiresAt.UTC().Format(time.RFC3339))
		}
		return nil
	}
	if len(usable) == 0 {
		return fmt.Errorf("%w: no release key to check digest %s with", ErrUnsigned, digest)
	}
	return fmt.Errorf("%w: digest %s was not signed by the controller's release key (%s)", ErrUnsigned, digest, strings.Join(usable, ", "))
}
