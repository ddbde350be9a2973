package eventlog

import "time"

// Event types. Each is a persisted contract: the name and its payload's JSON shape never
// change once events of it are stored; a new shape gets a new version suffix.
const (
	TypeAccountRegistered        = "account.registered.v1"
	TypeDeviceLoggedIn           = "account.device_logged_in.v1"
	TypeDeviceLoggedOut          = "account.device_logged_out.v1"
	TypeAllDevicesLoggedOut      = "account.all_devices_logged_out.v1"
	TypePasswordChanged          = "account.password_changed.v1"
	TypeAccountDeactivated       = "account.deactivated.v1"
	TypeDeviceRenamed            = "account.device_renamed.v1"
	TypeDevicesSeen              = "account.devices_seen.v1"
	TypeTokensRefreshed          = "account.tokens_refreshed.v1"
	TypeTokensRefreshedV2        = "account.tokens_refreshed.v2"
	TypeRefreshTokenRetired      = "account.refresh_token_retired.v1"
	TypeGuestUpgraded            = "account.guest_upgraded.v1"
	TypeDeviceTokensRevoked      = "account.device_tokens_revoked.v1"
	TypeUIASessionStarted        = "uia.session_started.v1"
	TypeUIAStageCompleted        = "uia.stage_completed.v1"
	TypeRegistrationTokenCreated = "registration_token.created.v1"
	TypeRegistrationTokenUsed    = "registration_token.used.v1"
	TypeRegistrationTokenRevoked = "registration_token.revoked.v1"
	TypeRegistrationTokenUpdated = "registration_token.updated.v1"
)

// Types lists every event type Spelt writes.
var Types = []string{
	TypeAccountRegistered, TypeDeviceLoggedIn, TypeDeviceLoggedOut, TypeAllDevicesLoggedOut,
	TypePasswordChanged, TypeAccountDeactivated, TypeDeviceRenamed, TypeDevicesSeen, TypeTokensRefreshed,
	TypeGuestUpgraded, TypeDeviceTokensRevoked, TypeTokensRefreshedV2, TypeRefreshTokenRetired,
	TypeUIASessionStarted, TypeUIAStageCompleted,
	TypeRegistrationTokenCreated, TypeRegistrationTokenUsed, TypeRegistrationTokenRevoked, TypeRegistrationTokenUpdated,
}

// UserStream is the stream of a user's account events.
func UserStream(userID string) string { return "user:" + userID }

// UIAStream is the stream of one user-interactive authentication session.
func UIAStream(session string) string { return "uia:" + session }

// RegistrationTokenStream is the stream of one registration token.
func RegistrationTokenStream(token string) string { return "registration_token:" + token }

// AccountRegistered: a user account was created.
type AccountRegistered struct {
	UserID    string `json:"user_id"`
	Localpart string `json:"localpart"`
	// PasswordHash is an argon2id PHC string; empty when the account has no password.
	PasswordHash string `json:"password_hash,omitempty"`
	Guest        bool   `json:"guest,omitempty"`
	Admin        bool   `json:"admin,omitempty"`
	// Appservice is the application service that registered the account.
	Appservice string `json:"appservice,omitempty"`
}

// DeviceLoggedIn: a device got a new access token (login or registration). The device is
// created if it did not exist.
type DeviceLoggedIn struct {
	UserID      string  `json:"user_id"`
	DeviceID    string  `json:"device_id"`
	DisplayName *string `json:"display_name,omitempty"`
	// TokenHash is the SHA-256 of the access token; the token itself is never stored.
	TokenHash []byte     `json:"token_hash"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// RefreshTokenHash is the SHA-256 of the refresh token issued with the access
	// token, when the client asked for one.
	RefreshTokenHash []byte `json:"refresh_token_hash,omitempty"`
}

// TokensRefreshed: a refresh token was used (and so revoked, with the access tokens
// issued with it) for a new access token and a new refresh token. Written before
// TokensRefreshedV2; replay still applies it so.
type TokensRefreshed struct {
	UserID           string     `json:"user_id"`
	DeviceID         string     `json:"device_id"`
	UsedRefreshHash  []byte     `json:"used_refresh_hash"`
	TokenHash        []byte     `json:"token_hash"`
	ExpiresAt        *time.Time `json:"expires_at,omitempty"`
	RefreshTokenHash []byte     `json:"refresh_token_hash"`
}

// DeviceLoggedOut: a device and all its tokens are gone.
type DeviceLoggedOut struct {
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
}

// AllDevicesLoggedOut: every device of the user and all their tokens are gone.
type AllDevicesLoggedOut struct {
	UserID string `json:"user_id"`
}

// TokensRefreshedV2: a refresh token was used for a new access token and a new refresh
// token. The access tokens issued with the used one stop working; the used refresh
// token itself stays valid until its successor is used (spec: "Refreshing access
// tokens"), so a client that lost the answer can refresh again. Revoke lists refresh
// tokens that stop working now, with their access tokens: the used token's earlier
// successor (when it is used again) and the used token's predecessor.
type TokensRefreshedV2 struct {
	UserID           string     `json:"user_id"`
	DeviceID         string     `json:"device_id"`
	UsedRefreshHash  []byte     `json:"used_refresh_hash"`
	TokenHash        []byte     `json:"token_hash"`
	ExpiresAt        *time.Time `json:"expires_at,omitempty"`
	RefreshTokenHash []byte     `json:"refresh_token_hash"`
	Revoke           [][]byte   `json:"revoke,omitempty"`
}

// RefreshTokenRetired: the access token a refresh gave was used, so the refresh token
// it was refreshed from stops working (spec: "Refreshing access tokens").
type RefreshTokenRetired struct {
	UserID      string `json:"user_id"`
	RefreshHash []byte `json:"refresh_hash"`
}

// DeviceTokensRevoked: every access and refresh token of the device stopped working;
// the device itself stays (a login naming an existing device ID, spec: "Relationship
// between access tokens and devices").
type DeviceTokensRevoked struct {
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
}

// GuestUpgraded: a guest account became a full account with a password, keeping its
// user ID.
type GuestUpgraded struct {
	UserID       string `json:"user_id"`
	PasswordHash string `json:"password_hash,omitempty"`
}

// PasswordChanged: the user's password was replaced.
type PasswordChanged struct {
	UserID       string `json:"user_id"`
	PasswordHash string `json:"password_hash"`
}

// AccountDeactivated: the account can no longer log in; its devices and tokens are gone.
type AccountDeactivated struct {
	UserID string `json:"user_id"`
	// Erase asks that the user's content be made unavailable as far as possible.
	Erase bool `json:"erase,omitempty"`
}

// DeviceRenamed: a device's display name changed.
type DeviceRenamed struct {
	UserID      string `json:"user_id"`
	DeviceID    string `json:"device_id"`
	DisplayName string `json:"display_name"`
}

// DevicesSeen records, in one event, when and from where devices were last used. The
// HTTP layer collects sightings in memory and flushes them periodically, so that
// requests do not each write to the log.
type DevicesSeen struct {
	Seen []DeviceSeen `json:"seen"`
}

// DeviceSeen is one device's latest sighting.
type DeviceSeen struct {
	UserID   string    `json:"user_id"`
	DeviceID string    `json:"device_id"`
	IP       string    `json:"ip"`
	At       time.Time `json:"at"`
}

// DevicesSeenStream is the stream of device sightings.
const DevicesSeenStream = "devices_seen"

// UIASessionStarted: a user-interactive authentication session began.
type UIASessionStarted struct {
	Session string `json:"session"`
	// Kind names the operation the session authorises, e.g. "register".
	Kind string `json:"kind"`
	// UserID is the user the session authenticates; empty for registration.
	UserID string `json:"user_id,omitempty"`
	// Operation says what the session authorises (e.g. which devices to delete);
	// continuing it for anything else is refused.
	Operation string `json:"operation,omitempty"`
}

// UIAStageCompleted: a stage of a user-interactive authentication session succeeded.
type UIAStageCompleted struct {
	Session string `json:"session"`
	Stage   string `json:"stage"`
	// Token is the registration token that m.login.registration_token accepted.
	Token string `json:"token,omitempty"`
	// TermsVersion is the version of the policy that m.login.terms accepted.
	TermsVersion string `json:"terms_version,omitempty"`
}

// RegistrationTokenCreated: an operator created a registration token.
type RegistrationTokenCreated struct {
	Token       string     `json:"token"`
	UsesAllowed *int32     `json:"uses_allowed,omitempty"`
	ExpiryTime  *time.Time `json:"expiry_time,omitempty"`
}

// RegistrationTokenUsed: a registration completed with the token.
type RegistrationTokenUsed struct {
	Token  string `json:"token"`
	UserID string `json:"user_id"`
}

// RegistrationTokenUpdated: an operator changed the token's limits; both fields are
// the new values (nil: no limit).
type RegistrationTokenUpdated struct {
	Token       string     `json:"token"`
	UsesAllowed *int32     `json:"uses_allowed"`
	ExpiryTime  *time.Time `json:"expiry_time"`
}

// RegistrationTokenRevoked: an operator revoked the token.
type RegistrationTokenRevoked struct {
	Token string `json:"token"`
}
