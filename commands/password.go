package commands

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// hashPassword returns an argon2id PHC string for password, waiting for a hashing slot.
func (c *Commands) hashPassword(password string) string {
	c.hashSlots <- struct{}{}
	defer func() { <-c.hashSlots }()
	return argonHash(password)
}

// checkPassword reports whether password matches the PHC string, waiting for a hashing
// slot: each hash takes tens of milliseconds of CPU and 19 MiB, so a burst of logins
// queues instead of exhausting memory.
func (c *Commands) checkPassword(phc, password string) bool {
	c.hashSlots <- struct{}{}
	defer func() { <-c.hashSlots }()
	return argonCheck(phc, password)
}

// argonHash returns an argon2id PHC string for password.
func argonHash(password string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// argonCheck reports whether password matches the PHC string, in constant time.
func argonCheck(phc, password string) bool {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked against when the user does not exist, so that a login for an
// unknown user takes as long as one with a wrong password.
var dummyHash = argonHash("spelt-dummy-password")
