package eventlog

import "time"

// Login-token event types (m.login.token: POST /login/get_token, SSO hand-back).
const (
	TypeLoginTokenIssued = "account.login_token_issued.v1"
	TypeLoginTokenUsed   = "account.login_token_used.v1"
)

func init() { Types = append(Types, TypeLoginTokenIssued, TypeLoginTokenUsed) }

// LoginTokenIssued: a short-lived, single-use login token was issued for the user.
type LoginTokenIssued struct {
	UserID    string    `json:"user_id"`
	TokenHash []byte    `json:"token_hash"`
	ExpiresAt time.Time `json:"expires_at"`
}

// LoginTokenUsed: the login token was exchanged for an access token.
type LoginTokenUsed struct {
	UserID    string `json:"user_id"`
	TokenHash []byte `json:"token_hash"`
}
