package tokens

import (
	"bytes"
	"strings"
	"testing"
)

func TestTokens(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		for _, tok := range []string{NewAccessToken(), NewRefreshToken(), NewLoginToken()} {
			if seen[tok] {
				t.Fatalf("token %s repeated", tok)
			}
			seen[tok] = true
			if len(tok) != 4+43 {
				t.Errorf("token %q: want 4 + 43 characters (256 bits)", tok)
			}
		}
	}
	if a := NewAccessToken(); !strings.HasPrefix(a, "spt_") {
		t.Errorf("access token %q", a)
	}
	if !bytes.Equal(Hash("x"), Hash("x")) || bytes.Equal(Hash("x"), Hash("y")) || len(Hash("x")) != 32 {
		t.Error("Hash is not SHA-256-shaped")
	}
	if d := RandomUpper(10); len(d) != 10 || strings.Trim(d, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		t.Errorf("RandomUpper: %q", d)
	}
}
