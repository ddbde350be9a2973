// Package signingkey loads and creates the server's ed25519 signing key, stored in the
// format Synapse uses ("ed25519 <key id> <unpadded base64 seed>"), so keys move between
// the two.
package signingkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Key is a named ed25519 key.
type Key struct {
	ID      string // e.g. "ed25519:a_AbCd"
	Private ed25519.PrivateKey
}

// Public returns the public half.
func (k Key) Public() ed25519.PublicKey { return k.Private.Public().(ed25519.PublicKey) }

// LoadOrCreate reads the key at path, creating it (mode 0600) when the file does not
// exist. created reports whether it was made now.
func LoadOrCreate(path string) (key Key, created bool, err error) {
	key, err = Load(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	seed := make([]byte, ed25519.SeedSize)
	_, _ = rand.Read(seed)
	ver := make([]byte, 3)
	_, _ = rand.Read(ver)
	name := "a_" + base64.RawURLEncoding.EncodeToString(ver)[:4]
	line := fmt.Sprintf("ed25519 %s %s\n", name, base64.RawStdEncoding.EncodeToString(seed))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Key{}, false, fmt.Errorf("signing key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Key{}, false, fmt.Errorf("signing key: %w", err)
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return Key{}, false, fmt.Errorf("signing key: %w", err)
	}
	if err := f.Close(); err != nil {
		return Key{}, false, fmt.Errorf("signing key: %w", err)
	}
	key, err = Load(path)
	return key, err == nil, err
}

// Load reads the first key of the file at path.
func Load(path string) (Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("signing key: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 || f[0] != "ed25519" {
			return Key{}, fmt.Errorf("signing key %s: want \"ed25519 <id> <seed>\"", path)
		}
		seed, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(f[2], "="))
		if err != nil || len(seed) != ed25519.SeedSize {
			return Key{}, fmt.Errorf("signing key %s: bad seed", path)
		}
		return Key{ID: "ed25519:" + f[1], Private: ed25519.NewKeyFromSeed(seed)}, nil
	}
	return Key{}, fmt.Errorf("signing key %s: empty", path)
}
