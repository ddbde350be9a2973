// Package mxid holds the Matrix identifier rules both sides of Spelt share (spec:
// appendices, "Identifier Grammar", v1.13).
package mxid

import (
	"errors"
	"strings"
)

// MaxUserIDLength is the spec's limit on a full user ID, sigil and domain included.
const MaxUserIDLength = 255

// UserID returns "@localpart:server".
func UserID(localpart, server string) string { return "@" + localpart + ":" + server }

// Errors of ValidateLocalpart.
var (
	ErrEmpty         = errors.New("user ID cannot be empty")
	ErrBadCharacters = errors.New("user ID may only contain the characters a-z, 0-9, '.', '_', '=', '-', '/' and '+'")
	ErrTooLong       = errors.New("user ID is too long")
	ErrNumeric       = errors.New("numeric user IDs are reserved for guest users")
	ErrReserved      = errors.New("user IDs starting with '_' are reserved")
)

// ValidateLocalpart checks a localpart a client asks to register: the spec's grammar
// for new user IDs (lower case only), the length limit once the server name is added,
// and Synapse's reservations (all-digit IDs are guests', leading '_' is for bridges).
func ValidateLocalpart(localpart, server string) error {
	if localpart == "" {
		return ErrEmpty
	}
	for _, c := range localpart {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("._=-/+", c)) {
			return ErrBadCharacters
		}
	}
	if len(UserID(localpart, server)) > MaxUserIDLength {
		return ErrTooLong
	}
	if strings.Trim(localpart, "0123456789") == "" {
		return ErrNumeric
	}
	if localpart[0] == '_' {
		return ErrReserved
	}
	return nil
}

// SplitUserID splits "@localpart:server" into its parts.
func SplitUserID(id string) (localpart, server string, ok bool) {
	if !strings.HasPrefix(id, "@") {
		return "", "", false
	}
	lp, srv, ok := strings.Cut(id[1:], ":")
	if !ok || lp == "" || srv == "" {
		return "", "", false
	}
	return lp, srv, true
}
