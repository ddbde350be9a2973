package commands

import (
	"errors"
	"fmt"
)

// Errors a command returns; package http maps them to Matrix error codes.
var (
	ErrInvalidCredentials = errors.New("invalid username or password")
	ErrUserDeactivated    = errors.New("user is deactivated")
	ErrUserInUse          = errors.New("user ID already taken")
	// ErrExclusive: the user ID or alias is in an application service's exclusive
	// namespace, and the request is not that service's.
	ErrExclusive            = errors.New("reserved by an application service")
	ErrRegistrationDisabled = errors.New("registration is disabled")
	ErrGuestsDisabled       = errors.New("guest access is disabled")
	ErrUnknownSession       = errors.New("unknown user-interactive authentication session")
	ErrUIAOperationChanged  = errors.New("requested operation has changed during the user-interactive authentication session")
	ErrInvalidToken         = errors.New("invalid registration token")
	ErrNotFound             = errors.New("not found")
	ErrUnknownRefreshToken  = errors.New("unknown or already used refresh token")
	ErrInvalidLoginToken    = errors.New("invalid, expired or already used login token")
)

// InvalidUsernameError explains why a username was refused.
type InvalidUsernameError struct{ Reason string }

func (e *InvalidUsernameError) Error() string { return "invalid username: " + e.Reason }

// BadRequestError is input the command cannot act on.
type BadRequestError struct{ Reason string }

func (e *BadRequestError) Error() string { return e.Reason }

func badRequest(format string, args ...any) error {
	return &BadRequestError{Reason: fmt.Sprintf(format, args...)}
}

// BadJSONError is a request body whose JSON the command cannot use as it is (event
// content that is not an object, or numbers canonical JSON cannot hold): M_BAD_JSON.
type BadJSONError struct{ Reason string }

func (e *BadJSONError) Error() string { return e.Reason }

// AuthRequiredError means the operation needs (more) user-interactive authentication
// (spec: client-server API, "User-interactive authentication API").
type AuthRequiredError struct {
	Session   string
	Flows     [][]string
	Params    map[string]any
	Completed []string
	// Cause is set when the last stage submitted failed.
	Cause error
}

func (e *AuthRequiredError) Error() string {
	if e.Cause != nil {
		return "authentication required: " + e.Cause.Error()
	}
	return "authentication required"
}

func (e *AuthRequiredError) Unwrap() error { return e.Cause }

// Errors of third-party identifiers (3PIDs).
var (
	ErrThreepidMediumNotSupported = errors.New("this homeserver cannot validate third-party identifiers of this medium")
	ErrThreepidInUse              = errors.New("third-party identifier already in use")
	ErrThreepidNotFound           = errors.New("no account has this third-party identifier")
	ErrThreepidAuthFailed         = errors.New("third-party identifier not validated")
	ErrNoValidSession             = errors.New("no validation session matches sid, client_secret and token")
	ErrThreepidSessionExpired     = errors.New("the validation token has expired: request a new one")
	ErrIdentityServerNotTrusted   = errors.New("this homeserver does not trust this identity server")
	// ErrIdentityServerUnavailable: the identity server could not be reached or
	// understood.
	ErrIdentityServerUnavailable = errors.New("the identity server is unavailable")
)

// IdentityServerError is an identity server's refusal, passed on to the client.
type IdentityServerError struct {
	Errcode, Message string
}

func (e *IdentityServerError) Error() string {
	return "identity server: " + e.Errcode + ": " + e.Message
}
