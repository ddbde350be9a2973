package mxid

import (
	"fmt"
	"strings"
)

// MapLocalpart maps any string (a username from an identity provider, say) onto the
// characters a new localpart may use, with the algorithm the spec suggests (appendices,
// "Mapping from other character sets", v1.13): A-Z are lower-cased, and every other
// byte outside a-z, 0-9 and "._-/+", and "=" itself, becomes "=" and its two hex
// digits. Upper and lower case are not told apart (no "_" escaping), as for
// registration. The result may still be refused by ValidateLocalpart (empty, all
// digits, leading "_", too long): callers decide what to do then.
func MapLocalpart(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', strings.IndexByte("._-/+", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "=%02x", c)
		}
	}
	return b.String()
}
