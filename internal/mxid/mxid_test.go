package mxid

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateLocalpart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, localpart string
		want            error
	}{
		{"plain", "alice", nil},
		{"all allowed characters", "a.b_c=d-e/f+g9", nil},
		{"empty", "", ErrEmpty},
		{"upper case", "Alice", ErrBadCharacters},
		{"space", "a b", ErrBadCharacters},
		{"colon", "a:b", ErrBadCharacters},
		{"non-ascii", "ålice", ErrBadCharacters},
		{"numeric", "1234", ErrNumeric},
		{"leading underscore", "_bridge", ErrReserved},
		{"longest", strings.Repeat("a", 255-len("@:example.org")), nil},
		{"too long", strings.Repeat("a", 256-len("@:example.org")), ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := ValidateLocalpart(tt.localpart, "example.org"); !errors.Is(err, tt.want) {
				t.Errorf("ValidateLocalpart(%q) = %v, want %v", tt.localpart, err, tt.want)
			}
		})
	}
}

func TestSplitUserID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][3]any{
		"@a:b.c":      {"a", "b.c", true},
		"@a:b.c:8448": {"a", "b.c:8448", true},
		"a:b":         {"", "", false},
		"@a":          {"", "", false},
		"@:b":         {"", "", false},
	} {
		lp, srv, ok := SplitUserID(in)
		if lp != want[0] || srv != want[1] || ok != want[2] {
			t.Errorf("SplitUserID(%q) = %q %q %v, want %v", in, lp, srv, ok, want)
		}
	}
}
