package eventlog

import (
	"encoding/hex"
	"time"
)

// Single sign-on event types (spec: client-server API, "SSO client
// login/authentication"), and the end of a user-interactive authentication session,
// which SSO's fallback made necessary: a stage completed out of band must not let the
// session be used twice.
const (
	TypeSSOLoginStarted     = "sso.login_started.v1"
	TypeSSOLoginFinished    = "sso.login_finished.v1"
	TypeSSOIdentityLinked   = "sso.identity_linked.v1"
	TypeUIASessionCompleted = "uia.session_completed.v1"
)

func init() {
	Types = append(Types, TypeSSOLoginStarted, TypeSSOLoginFinished, TypeSSOIdentityLinked, TypeUIASessionCompleted)
}

// SSOLoginStream is the stream of one in-flight SSO login, named by the SHA-256 of its
// OAuth 2.0 state.
func SSOLoginStream(stateHash []byte) string { return "sso:" + hex.EncodeToString(stateHash) }

// SSOIdentityStream is the stream of one identity at an identity provider; its first
// event links it to an account, once.
func SSOIdentityStream(idp, subject string) string { return "sso_identity:" + idp + ":" + subject }

// SSOLoginStarted: a browser was sent to an identity provider. The state itself, the
// OpenID Connect nonce and the PKCE verifier are not stored: the state is known only to
// the browser and the provider, and the nonce and verifier are derived from it with a
// server secret, so nothing here lets a reader of the log finish the login.
type SSOLoginStarted struct {
	StateHash []byte `json:"state_hash"`
	IdP       string `json:"idp"`
	// RedirectURL is the client's redirectUrl (login); empty for user-interactive
	// authentication.
	RedirectURL string `json:"redirect_url,omitempty"`
	// UIASession and UserID are the user-interactive authentication session the login
	// completes an m.login.sso stage of, and its user; empty for login.
	UIASession string `json:"uia_session,omitempty"`
	UserID     string `json:"user_id,omitempty"`
	// BrowserHash is the SHA-256 of the value of the cookie set on the browser that
	// started the login: the callback must come from the same browser.
	BrowserHash []byte    `json:"browser_hash"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// SSOLoginFinished: the identity provider's answer was verified and the login (or the
// m.login.sso stage) done; the state cannot be used again.
type SSOLoginFinished struct {
	StateHash []byte `json:"state_hash"`
	UserID    string `json:"user_id"`
}

// SSOIdentityLinked: the identity provider's subject logs in as the user from now on.
type SSOIdentityLinked struct {
	IdP     string `json:"idp"`
	Subject string `json:"subject"`
	UserID  string `json:"user_id"`
	// DisplayName is the display name the provider gave when the link was made (its
	// display-name claim), for the user's profile.
	DisplayName string `json:"display_name,omitempty"`
}

// UIASessionCompleted: the operation a user-interactive authentication session
// authorised was done; the session cannot authorise another.
type UIASessionCompleted struct {
	Session string `json:"session"`
}
