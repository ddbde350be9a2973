package eventlog

import "time"

// Third-party identifier (3PID) event types: validating an e-mail address the homeserver
// mailed a token to, and the 3PIDs of accounts (spec: client-server API, "Adding Account
// Administrative Contact Information").
const (
	TypeThreepidValidationRequested = "threepid.validation_requested.v1"
	TypeThreepidValidated           = "threepid.validated.v1"
	TypeThreepidSessionUsed         = "threepid.session_used.v1"
	TypeThreepidAdded               = "threepid.added.v1"
	TypeThreepidRemoved             = "threepid.removed.v1"
)

func init() {
	Types = append(Types, TypeThreepidValidationRequested, TypeThreepidValidated, TypeThreepidSessionUsed,
		TypeThreepidAdded, TypeThreepidRemoved)
}

// ThreepidSessionStream is the stream of one 3PID validation session.
func ThreepidSessionStream(sid string) string { return "threepid_session:" + sid }

// ThreepidStream is the stream of one address: its additions and removals, so that two
// accounts adding the same address at once conflict on its version (one gets
// ErrVersionConflict, retries, and finds the address taken).
func ThreepidStream(medium, address string) string { return "threepid:" + medium + ":" + address }

// ThreepidValidationRequested: a validation token was sent to an address, starting the
// session SID or, when the session exists, replacing its token (a new send attempt).
type ThreepidValidationRequested struct {
	SID     string `json:"sid"`
	Medium  string `json:"medium"`
	Address string `json:"address"`
	// Purpose is what the token was requested for: register, add or password_reset.
	Purpose string `json:"purpose"`
	// ClientSecretHash and TokenHash are SHA-256 hashes; the secret and the token are
	// never stored.
	ClientSecretHash []byte    `json:"client_secret_hash"`
	TokenHash        []byte    `json:"token_hash"`
	SendAttempt      int64     `json:"send_attempt"`
	ExpiresAt        time.Time `json:"expires_at"`
	NextLink         string    `json:"next_link,omitempty"`
}

// ThreepidValidated: the token of the session was submitted; the session's address is
// validated as of the event's recorded time.
type ThreepidValidated struct {
	SID     string `json:"sid"`
	Medium  string `json:"medium"`
	Address string `json:"address"`
}

// ThreepidSessionUsed: a validated session completed a user-interactive authentication
// stage (m.login.email.identity) of UIASession; it cannot complete another.
type ThreepidSessionUsed struct {
	SID        string `json:"sid"`
	UIASession string `json:"uia_session"`
}

// ThreepidAdded: a validated 3PID was added to the user's account (added at the
// event's recorded time).
type ThreepidAdded struct {
	UserID      string    `json:"user_id"`
	Medium      string    `json:"medium"`
	Address     string    `json:"address"`
	ValidatedAt time.Time `json:"validated_at"`
	// SID is the validation session that proved the address.
	SID string `json:"sid,omitempty"`
}

// ThreepidRemoved: the 3PID is no longer the user's. (A deactivated account loses its
// 3PIDs with its account.deactivated.v1 event, without one of these.)
type ThreepidRemoved struct {
	UserID  string `json:"user_id"`
	Medium  string `json:"medium"`
	Address string `json:"address"`
}
