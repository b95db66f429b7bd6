package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
)

// Token kinds, the middle part of a token: "cairn_u_…" authenticates a
// user, "cairn_e_…" enrolls an agent. The prefix lets secret scanners and
// people tell them apart; it carries no authority.
const (
	TokenUser   = "u"
	TokenEnroll = "e"
)

var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewToken returns a new random secret: "cairn_" + kind + "_" + 32 random
// bytes in lowercase base32. Only its HashToken is stored.
func NewToken(kind string) (string, error) {
	if kind == "" || strings.Trim(kind, "abcdefghijklmnopqrstuvwxyz") != "" {
		return "", fmt.Errorf("token kind %q: want lowercase letters", kind)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	return "cairn_" + kind + "_" + tokenEncoding.EncodeToString(b), nil
}

// HashToken is the form a token is stored and looked up in: its sha256,
// hex.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
