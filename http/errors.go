package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/queries"
)

// MatrixError is an error response: {"errcode", "error"} plus any extra fields.
type MatrixError struct {
	Status  int
	Code    string
	Message string
	Extra   map[string]any
}

func (e *MatrixError) Error() string { return e.Code + ": " + e.Message }

func matrixErr(status int, code, format string, args ...any) *MatrixError {
	return &MatrixError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error codes (spec: client-server API, "Standard error response").
const (
	codeForbidden        = "M_FORBIDDEN"
	codeUnknownToken     = "M_UNKNOWN_TOKEN"
	codeMissingToken     = "M_MISSING_TOKEN"
	codeBadJSON          = "M_BAD_JSON"
	codeNotJSON          = "M_NOT_JSON"
	codeNotFound         = "M_NOT_FOUND"
	codeLimitExceeded    = "M_LIMIT_EXCEEDED"
	codeUnrecognized     = "M_UNRECOGNIZED"
	codeUnknown          = "M_UNKNOWN"
	codeUserInUse        = "M_USER_IN_USE"
	codeInvalidUsername  = "M_INVALID_USERNAME"
	codeMissingParam     = "M_MISSING_PARAM"
	codeInvalidParam     = "M_INVALID_PARAM"
	codeExclusive        = "M_EXCLUSIVE"
	codeTooLarge         = "M_TOO_LARGE"
	codeUserDeactivated  = "M_USER_DEACTIVATED"
	codeGuestForbidden   = "M_GUEST_ACCESS_FORBIDDEN"
	codeLimitRetryHeader = "Retry-After"
)

// Error codes of third-party identifiers (spec: client-server API, "Other error codes";
// the session ones are the identity service API's, whose submitToken parameters the
// submit pages take).
const (
	codeThreepidInUse        = "M_THREEPID_IN_USE"
	codeThreepidNotFound     = "M_THREEPID_NOT_FOUND"
	codeThreepidAuthFailed   = "M_THREEPID_AUTH_FAILED"
	codeThreepidMediumUnsupp = "M_THREEPID_MEDIUM_NOT_SUPPORTED"
	codeServerNotTrusted     = "M_SERVER_NOT_TRUSTED"
	codeNoValidSession       = "M_NO_VALID_SESSION"
	codeSessionExpired       = "M_SESSION_EXPIRED"
)

// Error codes of rooms (spec: client-server API, "Other error codes").
const (
	codeBadAlias               = "M_BAD_ALIAS"
	codeRoomInUse              = "M_ROOM_IN_USE"
	codeUnsupportedRoomVersion = "M_UNSUPPORTED_ROOM_VERSION"
)

// toMatrix maps any error a handler returns to the response the client gets. It is the
// only place where domain errors meet status codes.
func toMatrix(err error) *MatrixError {
	var me *MatrixError
	var he *echo.HTTPError
	var uia *commands.AuthRequiredError
	var badName *commands.InvalidUsernameError
	var isErr *commands.IdentityServerError
	if errors.As(err, &isErr) {
		// The identity server's refusal, passed on as a 400 (Synapse passes its status
		// on too). Token errors are about the identity server's token, not Spelt's:
		// passed on as such, a client would log out.
		code := isErr.Errcode
		if code == codeUnknownToken || code == codeMissingToken || code == "M_UNAUTHORIZED" {
			code = codeForbidden
		}
		return matrixErr(nethttp.StatusBadRequest, code, "Identity server: %s", isErr.Message)
	}
	var bad *commands.BadRequestError
	var tooBig *nethttp.MaxBytesError
	var forbiddenRoom *commands.ForbiddenError
	var badJSON *commands.BadJSONError
	var badAlias *commands.BadAliasError
	switch {
	case errors.As(err, &me):
		return me
	case errors.As(err, &uia):
		return uiaError(uia)
	case errors.As(err, &tooBig):
		return matrixErr(nethttp.StatusRequestEntityTooLarge, codeTooLarge, "request body is larger than %d bytes", tooBig.Limit)
	case errors.As(err, &badName):
		return matrixErr(nethttp.StatusBadRequest, codeInvalidUsername, "%s", badName.Reason)
	case errors.As(err, &bad):
		return matrixErr(nethttp.StatusBadRequest, codeInvalidParam, "%s", bad.Reason)
	case errors.Is(err, commands.ErrUserInUse):
		return matrixErr(nethttp.StatusBadRequest, codeUserInUse, "User ID already taken.")
	case errors.Is(err, commands.ErrInvalidCredentials):
		return matrixErr(nethttp.StatusForbidden, codeForbidden, "Invalid username or password")
	case errors.Is(err, commands.ErrExclusive):
		return matrixErr(nethttp.StatusBadRequest, codeExclusive, "This user ID or alias is reserved by an application service")
	case errors.Is(err, commands.ErrInvalidSignature):
		return matrixErr(nethttp.StatusBadRequest, "M_INVALID_SIGNATURE", "Invalid signature")
	case errors.Is(err, commands.ErrInvalidLoginToken):
		return matrixErr(nethttp.StatusForbidden, codeForbidden, "Invalid login token")
	case errors.Is(err, commands.ErrUserDeactivated):
		return matrixErr(nethttp.StatusForbidden, codeUserDeactivated, "This account has been deactivated")
	case errors.Is(err, commands.ErrRegistrationDisabled):
		return matrixErr(nethttp.StatusForbidden, codeForbidden, "Registration has been disabled")
	case errors.Is(err, commands.ErrGuestsDisabled):
		return matrixErr(nethttp.StatusForbidden, codeGuestForbidden, "Guest access is disabled")
	case errors.Is(err, commands.ErrUnknownSession):
		return matrixErr(nethttp.StatusBadRequest, codeUnknown, "Unknown session ID")
	case errors.Is(err, commands.ErrNotFound), errors.Is(err, queries.ErrNotFound):
		return matrixErr(nethttp.StatusNotFound, codeNotFound, "Not found")
	case errors.Is(err, queries.ErrUnknownToken), errors.Is(err, commands.ErrUnknownRefreshToken):
		return &MatrixError{Status: nethttp.StatusUnauthorized, Code: codeUnknownToken,
			Message: "Unknown access token", Extra: map[string]any{"soft_logout": false}}
	case errors.Is(err, commands.ErrThreepidMediumNotSupported):
		return matrixErr(nethttp.StatusBadRequest, codeThreepidMediumUnsupp, "%s", err.Error())
	case errors.Is(err, commands.ErrThreepidInUse):
		return matrixErr(nethttp.StatusBadRequest, codeThreepidInUse, "Third-party identifier already in use")
	case errors.Is(err, commands.ErrThreepidNotFound):
		return matrixErr(nethttp.StatusBadRequest, codeThreepidNotFound, "No account has this third-party identifier")
	case errors.Is(err, commands.ErrThreepidAuthFailed):
		return matrixErr(nethttp.StatusBadRequest, codeThreepidAuthFailed, "%s", err.Error())
	case errors.Is(err, commands.ErrNoValidSession):
		return matrixErr(nethttp.StatusBadRequest, codeNoValidSession, "No validation session matches sid, client_secret and token")
	case errors.Is(err, commands.ErrThreepidSessionExpired):
		return matrixErr(nethttp.StatusBadRequest, codeSessionExpired, "The validation token has expired: request a new one")
	case errors.Is(err, commands.ErrIdentityServerNotTrusted):
		return matrixErr(nethttp.StatusBadRequest, codeServerNotTrusted, "This homeserver does not trust this identity server")
	case errors.Is(err, commands.ErrIdentityServerUnavailable):
		return matrixErr(nethttp.StatusInternalServerError, codeUnknown, "The identity server is unavailable")
	case errors.Is(err, commands.ErrSSODisabled):
		// The spec's answer for an endpoint a server does not implement.
		return matrixErr(nethttp.StatusNotFound, codeUnrecognized, "Single sign-on is not configured")
	case errors.Is(err, commands.ErrUnknownIdP):
		return matrixErr(nethttp.StatusNotFound, codeNotFound, "Unknown identity provider")
	case errors.Is(err, commands.ErrUnknownSSOLogin):
		return matrixErr(nethttp.StatusForbidden, codeForbidden, "Unknown, expired or already used single sign-on login: start again from the client")
	case errors.Is(err, commands.ErrSSORefused), errors.Is(err, commands.ErrSSONotLinked):
		// The reason (an OAuth error code, the ID token check that failed) helps the
		// user and holds no secret.
		return matrixErr(nethttp.StatusForbidden, codeForbidden, "%s", err.Error())
	case errors.Is(err, commands.ErrSSOUnavailable):
		return matrixErr(nethttp.StatusBadGateway, codeUnknown, "The identity provider is unavailable")
	case errors.As(err, &badJSON):
		return matrixErr(nethttp.StatusBadRequest, codeBadJSON, "%s", badJSON.Reason)
	case errors.As(err, &forbiddenRoom):
		return matrixErr(nethttp.StatusForbidden, codeForbidden, "%s", forbiddenRoom.Reason)
	case errors.As(err, &badAlias):
		return matrixErr(nethttp.StatusBadRequest, codeBadAlias, "%s", badAlias.Error())
	case errors.Is(err, commands.ErrRoomNotFound), errors.Is(err, queries.ErrRoomNotFound):
		return matrixErr(nethttp.StatusNotFound, codeNotFound, "Room not found")
	case errors.Is(err, commands.ErrEventNotFound), errors.Is(err, queries.ErrEventNotFound):
		return matrixErr(nethttp.StatusNotFound, codeNotFound, "Event not found")
	case errors.Is(err, queries.ErrRoomForbidden):
		return matrixErr(nethttp.StatusForbidden, codeForbidden, "You are not allowed to see this room")
	case errors.Is(err, commands.ErrUnsupportedRoomVersion):
		return matrixErr(nethttp.StatusBadRequest, codeUnsupportedRoomVersion, "%s", err.Error())
	case errors.Is(err, commands.ErrAliasInUse):
		return matrixErr(nethttp.StatusBadRequest, codeRoomInUse, "Room alias already taken")
	case errors.Is(err, commands.ErrAliasExists):
		return matrixErr(nethttp.StatusConflict, codeUnknown, "Room alias already exists") // the spec's 409
	case errors.Is(err, commands.ErrAliasNotFound), errors.Is(err, queries.ErrAliasNotFound):
		return matrixErr(nethttp.StatusNotFound, codeNotFound, "Room alias not found")
	case errors.Is(err, commands.ErrEventTooLarge):
		return matrixErr(nethttp.StatusRequestEntityTooLarge, codeTooLarge, "Event is larger than 65536 bytes")
	case errors.Is(err, queries.ErrPresenceForbidden):
		return matrixErr(nethttp.StatusForbidden, codeForbidden, "You are not allowed to see their presence")
	case errors.Is(err, commands.ErrServerControlled):
		return matrixErr(nethttp.StatusMethodNotAllowed, codeBadJSON, "This type of account data is controlled by the server")
	case errors.Is(err, commands.ErrGuestsForbidden):
		return matrixErr(nethttp.StatusForbidden, codeGuestForbidden, "Guests may not join this room")
	case errors.Is(err, commands.ErrRemoteRoom):
		return matrixErr(nethttp.StatusNotFound, codeNotFound, "%s", err.Error())
	case errors.Is(err, queries.ErrBadHierarchyToken):
		return matrixErr(nethttp.StatusBadRequest, codeInvalidParam, "Unknown pagination token")
	case errors.Is(err, queries.ErrBadToken):
		return matrixErr(nethttp.StatusBadRequest, codeInvalidParam, "Unknown pagination token")
	case errors.As(err, &he):
		switch he.Code {
		case nethttp.StatusNotFound:
			return matrixErr(he.Code, codeUnrecognized, "Unrecognized request")
		case nethttp.StatusMethodNotAllowed:
			return matrixErr(he.Code, codeUnrecognized, "Method not allowed")
		case nethttp.StatusRequestEntityTooLarge:
			return matrixErr(he.Code, codeTooLarge, "Request body too large")
		}
		if he.Code >= 400 && he.Code < 500 {
			return matrixErr(he.Code, codeUnknown, "%v", he.Message)
		}
	}
	return nil
}

// uiaError is the 401 body of user-interactive authentication.
func uiaError(e *commands.AuthRequiredError) *MatrixError {
	flows := make([]map[string]any, len(e.Flows))
	for i, f := range e.Flows {
		flows[i] = map[string]any{"stages": f}
	}
	completed := e.Completed
	if completed == nil {
		completed = []string{}
	}
	params := e.Params
	if params == nil {
		params = map[string]any{}
	}
	me := &MatrixError{Status: nethttp.StatusUnauthorized, Extra: map[string]any{
		"flows": flows, "params": params, "session": e.Session, "completed": completed,
	}}
	if e.Cause != nil {
		var bad *commands.BadRequestError
		switch {
		case errors.Is(e.Cause, commands.ErrInvalidToken):
			me.Code, me.Message = codeForbidden, "Invalid registration token"
		case errors.As(e.Cause, &bad):
			me.Code, me.Message = codeUnrecognized, bad.Reason
		case errors.Is(e.Cause, commands.ErrThreepidAuthFailed):
			me.Code, me.Message = codeThreepidAuthFailed, e.Cause.Error()
		case errors.Is(e.Cause, commands.ErrThreepidInUse):
			me.Code, me.Message = codeThreepidInUse, "Third-party identifier already in use"
		case errors.Is(e.Cause, commands.ErrThreepidNotFound):
			me.Code, me.Message = codeThreepidNotFound, "No account has this third-party identifier"
		default:
			me.Code, me.Message = codeForbidden, e.Cause.Error()
		}
	}
	return me
}

// errorHandler is Echo's HTTPErrorHandler: every error response goes through it.
func errorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		me := toMatrix(err)
		if me != nil && me.Status >= 500 && !errors.As(err, new(*MatrixError)) {
			// A known failure of something Spelt depends on (an identity provider):
			// the client gets a fixed message, the operator the reason.
			logger.WarnContext(c.Request().Context(), "request failed",
				slog.String("request_id", requestID(c)), slog.String("path", c.Path()), slog.Any("err", err))
		}
		if me == nil {
			if errors.Is(err, context.Canceled) {
				// The client went away; nobody reads the answer.
				me = matrixErr(499, codeUnknown, "request cancelled")
			} else {
				logger.ErrorContext(c.Request().Context(), "request failed",
					slog.String("request_id", requestID(c)), slog.String("path", c.Path()), slog.Any("err", err))
				me = matrixErr(nethttp.StatusInternalServerError, codeUnknown, "Internal server error")
			}
		}
		body := make(map[string]any, len(me.Extra)+2)
		for k, v := range me.Extra {
			body[k] = v
		}
		if me.Code != "" {
			body["errcode"] = me.Code
			body["error"] = me.Message
		}
		if c.Request().Method == nethttp.MethodHead {
			err = c.NoContent(me.Status)
		} else {
			err = c.JSON(me.Status, body)
		}
		if err != nil {
			logger.WarnContext(c.Request().Context(), "writing error response failed", slog.Any("err", err))
		}
	}
}

// The errors handlers build for bad requests: status and errcode are chosen here.
func errMissingParam(format string, args ...any) error {
	return matrixErr(nethttp.StatusBadRequest, codeMissingParam, format, args...)
}

func errInvalidParam(format string, args ...any) error {
	return matrixErr(nethttp.StatusBadRequest, codeInvalidParam, format, args...)
}

func errBadJSON(format string, args ...any) error {
	return matrixErr(nethttp.StatusBadRequest, codeBadJSON, format, args...)
}

func errBadRequest(format string, args ...any) error {
	return matrixErr(nethttp.StatusBadRequest, codeUnknown, format, args...)
}

func errForbidden(format string, args ...any) error {
	return matrixErr(nethttp.StatusForbidden, codeForbidden, format, args...)
}

func errNotFound(format string, args ...any) error {
	return matrixErr(nethttp.StatusNotFound, codeNotFound, format, args...)
}
