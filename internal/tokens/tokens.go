// Package tokens makes and hashes the secrets Spelt hands to clients. Only hashes are
// stored: the write side stores Hash(token), the read side looks a presented token up by
// the same hash.
package tokens

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Hash is the stored form of an access token: SHA-256 of its bytes. A fast hash is
// enough because tokens are 256 random bits, not user-chosen.
func Hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// NewAccessToken returns a fresh access token ("spt_" and 256 random bits).
func NewAccessToken() string {
	return "spt_" + Random(32)
}

// NewRefreshToken returns a fresh refresh token ("spr_" and 256 random bits).
func NewRefreshToken() string {
	return "spr_" + Random(32)
}

// NewLoginToken returns a fresh m.login.token token ("spl_" and 256 random bits).
func NewLoginToken() string {
	return "spl_" + Random(32)
}

// Random returns n random bytes, base64url without padding.
func Random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
	return base64.RawURLEncoding.EncodeToString(b)
}

// RandomUpper returns n random letters A-Z, the shape of Synapse's device IDs.
func RandomUpper(n int) string {
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(letters[int(c)%len(letters)])
	}
	return s.String()
}
