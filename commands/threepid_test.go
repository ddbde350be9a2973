package commands

import "testing"

func TestCanonicalEmail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"alice@example.org", "alice@example.org"},
		{" Alice@Example.ORG ", "alice@example.org"},
		{"Strauß@Example.com", "strauss@example.com"}, // the spec's example of case folding
		{"a+tag@sub.example.org", "a+tag@sub.example.org"},
		{"", ""},
		{"alice", ""},
		{"alice@", ""},
		{"@example.org", ""},
		{"a@b@example.org", ""},
		{"Alice <alice@example.org>", ""},
		{"mailto:alice@example.org", ""},
		{"alice@example..org", ""},
		{"alice@example.org\r\nBcc: x@example.org", ""},
	} {
		got, err := CanonicalEmail(tc.in)
		if tc.want == "" && err == nil {
			t.Errorf("CanonicalEmail(%q) = %q, want an error", tc.in, got)
		}
		if tc.want != "" && (err != nil || got != tc.want) {
			t.Errorf("CanonicalEmail(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestValidClientSecret(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"monkeys_are_GREAT": true, "a.b=c_d-e": true, "": false, "a b": false, "ä": false, string(make([]byte, 256)): false,
	} {
		if validClientSecret(s) != want {
			t.Errorf("validClientSecret(%q) = %v", s, !want)
		}
	}
}
