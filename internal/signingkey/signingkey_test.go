package signingkey

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "signing.key")
	k1, created, err := LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreate: %v %v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
	b, _ := os.ReadFile(path)
	if f := strings.Fields(string(b)); len(f) != 3 || f[0] != "ed25519" || "ed25519:"+f[1] != k1.ID {
		t.Errorf("file %q is not in Synapse's format for %s", b, k1.ID)
	}
	k2, created, err := LoadOrCreate(path)
	if err != nil || created || k2.ID != k1.ID || !k2.Private.Equal(k1.Private) {
		t.Fatalf("second LoadOrCreate returned another key: %v %v", created, err)
	}
	sig := ed25519.Sign(k1.Private, []byte("x"))
	if !ed25519.Verify(k2.Public(), []byte("x"), sig) {
		t.Error("public key does not verify")
	}
}

func TestLoadRejectsGarbage(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "signing.key")
	for _, content := range []string{"", "rsa a_b AAAA\n", "ed25519 a_b not-base64!\n", "ed25519 a_b AAAA\n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil {
			t.Errorf("Load(%q) succeeded", content)
		}
	}
}
