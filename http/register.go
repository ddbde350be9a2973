package http

import (
	"errors"
	nethttp "net/http"
	"time"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/mxid"
	"spelt.dev/spelt/queries"
)

// authDict is the `auth` object of user-interactive authentication.
type authDict struct {
	Type       string `json:"type"`
	Session    string `json:"session"`
	Token      string `json:"token"`
	Password   string `json:"password"`
	Identifier *struct {
		Type string `json:"type"`
		User string `json:"user"`
	} `json:"identifier"`
	// User is the deprecated form of an m.id.user identifier.
	User string `json:"user"`
	// ThreepidCreds are an m.login.email.identity stage's credentials; ThreePidCreds
	// is their deprecated spelling.
	ThreepidCreds *threepidCreds `json:"threepid_creds"`
	ThreePidCreds *threepidCreds `json:"threePidCreds"`
}

// command returns a as the commands package takes it; nil stays nil.
func (a *authDict) command() (*commands.AuthDict, error) {
	if a == nil {
		return nil, nil
	}
	d := &commands.AuthDict{Type: a.Type, Session: a.Session, Token: a.Token, Password: a.Password, User: a.User}
	if a.Identifier != nil {
		if a.Identifier.Type != "m.id.user" {
			return nil, errBadRequest("Unsupported identifier type %s", a.Identifier.Type)
		}
		d.User = a.Identifier.User
	}
	if cr := a.creds(); cr != nil {
		d.ThreepidSID, d.ThreepidClientSecret = cr.SID, cr.ClientSecret
	}
	return d, nil
}

type registerRequest struct {
	Auth                     *authDict `json:"auth"`
	Username                 string    `json:"username"`
	Password                 string    `json:"password"`
	DeviceID                 string    `json:"device_id"`
	InitialDeviceDisplayName *string   `json:"initial_device_display_name"`
	InhibitLogin             bool      `json:"inhibit_login"`
	GuestAccessToken         string    `json:"guest_access_token"`
	RefreshToken             bool      `json:"refresh_token"`
	// Type is m.login.application_service when an application service registers one
	// of its users (with its token).
	Type string `json:"type"`
}

// appserviceLogin is the registration and login type of application services.
const appserviceLogin = "m.login.application_service"

// appserviceOf returns the application service whose token the request carries; a
// request without one, or with another token, is refused with 403 (the status both
// /register and /login document for a refusal).
func (s *Server) appserviceOf(c echo.Context) (string, error) {
	token, err := accessToken(c)
	if err != nil {
		return "", err
	}
	as := s.cfg.Appservices.ByToken(token)
	if token == "" || as == nil {
		return "", errForbidden("%s needs an application service's token", appserviceLogin)
	}
	return as.ID, nil
}

// postRegister: POST /_matrix/client/v3/register.
func (s *Server) postRegister(c echo.Context) error {
	kind := c.QueryParam("kind")
	if kind == "" {
		kind = "user"
	}
	if kind != "user" && kind != "guest" {
		return errInvalidParam("kind must be 'user' or 'guest'")
	}
	var req registerRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	cmd := commands.Register{
		Guest: kind == "guest", Username: req.Username, Password: req.Password,
		DeviceID: req.DeviceID, InitialDeviceDisplayName: req.InitialDeviceDisplayName, InhibitLogin: req.InhibitLogin,
		RefreshToken: req.RefreshToken,
	}
	auth, err := req.Auth.command()
	if err != nil {
		return err
	}
	cmd.Auth = auth
	if req.Type == appserviceLogin && kind == "user" {
		if cmd.Appservice, err = s.appserviceOf(c); err != nil {
			return err
		}
	}
	if req.GuestAccessToken != "" && kind == "user" {
		// Spec: client-server API, "Guest access": a guest upgrades through register.
		id, _, err := s.q.Authenticate(c.Request().Context(), req.GuestAccessToken)
		if err != nil {
			return err
		}
		if !id.IsGuest {
			return errInvalidParam("guest_access_token is not a guest's")
		}
		cmd.GuestUserID = id.UserID
	}
	res, err := s.cmd.Register(c.Request().Context(), meta(c, eventlog.OriginClient), cmd)
	if err != nil {
		return err
	}
	return s.respondRegistered(c, res, !req.InhibitLogin)
}

// respondRegistered waits until the new account (and token) is readable, then answers.
func (s *Server) respondRegistered(c echo.Context, res commands.Registered, login bool) error {
	if err := s.wait.WaitFor(c.Request().Context(), res.Position); err != nil {
		return err
	}
	body := map[string]any{"user_id": res.UserID, "home_server": s.cfg.ServerName}
	if login {
		body["access_token"] = res.AccessToken
		body["device_id"] = res.DeviceID
		if res.ExpiresIn > 0 {
			body["expires_in_ms"] = res.ExpiresIn.Milliseconds()
		}
		if res.RefreshToken != "" {
			body["refresh_token"] = res.RefreshToken
		}
	}
	return c.JSON(nethttp.StatusOK, body)
}

// registerAvailable: GET /_matrix/client/v3/register/available.
func (s *Server) registerAvailable(c echo.Context) error {
	username := c.QueryParam("username")
	if username == "" {
		return errMissingParam("Missing username parameter")
	}
	if err := mxid.ValidateLocalpart(username, s.cfg.ServerName); err != nil {
		return &commands.InvalidUsernameError{Reason: err.Error()}
	}
	taken, err := s.q.LocalpartTaken(c.Request().Context(), username)
	if err != nil {
		return err
	}
	if taken {
		return commands.ErrUserInUse
	}
	if s.cfg.Appservices.ExclusiveUser(mxid.UserID(username, s.cfg.ServerName)) != nil {
		return commands.ErrExclusive
	}
	return c.JSON(nethttp.StatusOK, map[string]bool{"available": true})
}

// registrationTokenValidity: GET /_matrix/client/v1/register/m.login.registration_token/validity.
func (s *Server) registrationTokenValidity(c echo.Context) error {
	if !s.cfg.RegistrationEnabled {
		return commands.ErrRegistrationDisabled
	}
	token := c.QueryParam("token")
	if token == "" {
		return errMissingParam("Missing token parameter")
	}
	t, err := s.q.RegistrationTokenLookup(c.Request().Context(), token)
	if errors.Is(err, queries.ErrNotFound) {
		return c.JSON(nethttp.StatusOK, map[string]bool{"valid": false})
	}
	if err != nil {
		return err
	}
	valid := commands.RegistrationTokenUsable(t.Revoked, t.UsesAllowed, t.Pending, t.Completed, t.ExpiryTime, time.Now())
	return c.JSON(nethttp.StatusOK, map[string]bool{"valid": valid})
}
