package appservice

import (
	"os"
	"path/filepath"
	"testing"
)

const bridge = `
id: bridge
url: null
as_token: secret-as
hs_token: secret-hs
sender_localpart: bridgebot
namespaces:
  users:
    - exclusive: true
      regex: "@irc_.*:spelt.test"
    - exclusive: false
      regex: "@shared_.*"
  aliases:
    - exclusive: true
      regex: "#irc_.*"
`

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "reg.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	g, err := Load([]string{write(t, bridge)}, "spelt.test")
	if err != nil {
		t.Fatal(err)
	}
	if g.ByToken("secret-as") == nil || g.ByToken("secret-hs") != nil || g.ByToken("") != nil {
		t.Error("ByToken")
	}
	for user, want := range map[string]bool{"@irc_alice:spelt.test": true, "@bridgebot:spelt.test": true, "@shared_x:spelt.test": false,
		"@alice:spelt.test": false, "@x_irc_alice:spelt.test": false} {
		if got := g.ExclusiveUser(user) != nil; got != want {
			t.Errorf("ExclusiveUser(%s) = %v, want %v", user, got, want)
		}
	}
	r := g.All()[0]
	if !r.OwnsUser("@shared_x:spelt.test", "spelt.test") || r.OwnsUser("@alice:spelt.test", "spelt.test") {
		t.Error("OwnsUser")
	}
	if g.ExclusiveAlias("#irc_chan:spelt.test") == nil || g.ExclusiveAlias("#chan:spelt.test") != nil {
		t.Error("ExclusiveAlias")
	}
	var none *Registry
	if none.ByToken("x") != nil || none.ExclusiveUser("@a:b") != nil || none.Len() != 0 {
		t.Error("nil registry")
	}
}

func TestLoadRefusals(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"no id":     "as_token: a\nhs_token: b\nsender_localpart: c\n",
		"no tokens": "id: x\nsender_localpart: c\n",
		"no sender": "id: x\nas_token: a\nhs_token: b\n",
		"bad regex": "id: x\nas_token: a\nhs_token: b\nsender_localpart: c\nnamespaces:\n  users:\n    - regex: \"(\"\n",
		"not yaml":  "id: [",
	} {
		if _, err := Load([]string{write(t, body)}, "spelt.test"); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	p := write(t, bridge)
	if _, err := Load([]string{p, p}, "spelt.test"); err == nil {
		t.Error("two registrations with one token loaded")
	}
}
