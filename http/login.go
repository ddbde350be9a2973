package http

import (
	"log/slog"
	nethttp "net/http"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/queries"
)

func (s *Server) getLogin(c echo.Context) error {
	flows := []map[string]any{{"type": "m.login.password"}, {"type": "m.login.token", "get_login_token": true}}
	if len(s.cfg.SSOProviders) > 0 {
		idps := make([]map[string]string, len(s.cfg.SSOProviders))
		for i, p := range s.cfg.SSOProviders {
			idps[i] = map[string]string{"id": p.ID, "name": p.Name}
		}
		flows = append(flows, map[string]any{"type": "m.login.sso", "identity_providers": idps})
	}
	if s.cfg.Appservices.Len() > 0 {
		flows = append(flows, map[string]any{"type": appserviceLogin})
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"flows": flows})
}

type loginRequest struct {
	Type       string           `json:"type"`
	Identifier *loginIdentifier `json:"identifier"`
	// User is the deprecated top-level form of an m.id.user identifier.
	User string `json:"user"`
	// Medium and Address are the deprecated top-level form of an m.id.thirdparty one.
	Medium                   string  `json:"medium"`
	Address                  string  `json:"address"`
	Password                 string  `json:"password"`
	Token                    string  `json:"token"`
	DeviceID                 string  `json:"device_id"`
	InitialDeviceDisplayName *string `json:"initial_device_display_name"`
	RefreshToken             bool    `json:"refresh_token"`
}

// postLogin: POST /_matrix/client/v3/login.
func (s *Server) postLogin(c echo.Context) error {
	var req loginRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.Type == "" {
		return errMissingParam("Missing login type")
	}
	var res commands.LoggedIn
	var err error
	switch req.Type {
	case "m.login.password":
		res, err = s.passwordLogin(c, req)
	case "m.login.token":
		if req.Token == "" {
			return errMissingParam("Missing token")
		}
		res, err = s.cmd.LoginWithToken(c.Request().Context(), meta(c, eventlog.OriginClient), commands.TokenLogin{
			Token: req.Token, DeviceID: req.DeviceID, InitialDeviceDisplayName: req.InitialDeviceDisplayName,
			RefreshToken: req.RefreshToken,
		})
	case appserviceLogin:
		res, err = s.appserviceLogin(c, req)
	default:
		return errBadRequest("Unknown login type %s", req.Type)
	}
	if err != nil {
		return err
	}
	if err := s.wait.WaitFor(c.Request().Context(), res.Position); err != nil {
		return err
	}
	body := map[string]any{
		"user_id": res.UserID, "access_token": res.AccessToken, "device_id": res.DeviceID,
		"home_server": s.cfg.ServerName,
		"well_known":  map[string]any{"m.homeserver": map[string]string{"base_url": s.cfg.PublicBaseURL}},
	}
	if res.ExpiresIn > 0 {
		body["expires_in_ms"] = res.ExpiresIn.Milliseconds()
	}
	if res.RefreshToken != "" {
		body["refresh_token"] = res.RefreshToken
	}
	return c.JSON(nethttp.StatusOK, body)
}

// passwordLogin is POST /login with m.login.password.
func (s *Server) passwordLogin(c echo.Context, req loginRequest) (commands.LoggedIn, error) {
	user := req.User
	medium, address := req.Medium, req.Address
	if req.Identifier != nil {
		switch req.Identifier.Type {
		case "m.id.user":
			user = req.Identifier.User
		case "m.id.thirdparty", "m.id.phone", "": // the spec's 3PID login example has no type
			medium, address = req.Identifier.threepid()
		default:
			return commands.LoggedIn{}, errBadRequest("Unsupported identifier type %s", req.Identifier.Type)
		}
	}
	if user == "" && (medium == "" || address == "") {
		return commands.LoggedIn{}, errMissingParam("Missing user identifier")
	}
	if req.Password == "" {
		return commands.LoggedIn{}, errMissingParam("Missing password")
	}
	return s.cmd.Login(c.Request().Context(), meta(c, eventlog.OriginClient), commands.Login{
		User: user, Medium: medium, Address: address, Password: req.Password, DeviceID: req.DeviceID, InitialDeviceDisplayName: req.InitialDeviceDisplayName,
		RefreshToken: req.RefreshToken,
	})
}

// appserviceLogin is POST /login with m.login.application_service: a device for a
// user the application service owns (spec: application service API, "Server admin
// style permissions").
func (s *Server) appserviceLogin(c echo.Context, req loginRequest) (commands.LoggedIn, error) {
	as, err := s.appserviceOf(c)
	if err != nil {
		return commands.LoggedIn{}, err
	}
	user := req.User
	if req.Identifier != nil {
		if req.Identifier.Type != "m.id.user" {
			return commands.LoggedIn{}, errBadRequest("Unsupported identifier type %s", req.Identifier.Type)
		}
		user = req.Identifier.User
	}
	if user == "" {
		return commands.LoggedIn{}, errMissingParam("Missing user identifier")
	}
	return s.cmd.LoginForAppservice(c.Request().Context(), meta(c, eventlog.OriginClient), as, commands.Login{
		User: user, DeviceID: req.DeviceID, InitialDeviceDisplayName: req.InitialDeviceDisplayName, RefreshToken: req.RefreshToken,
	})
}

// getLoginToken: POST /_matrix/client/v1/login/get_token.
func (s *Server) getLoginToken(c echo.Context) error {
	var req struct {
		Auth *authDict `json:"auth"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	auth, err := req.Auth.command()
	if err != nil {
		return err
	}
	res, err := s.cmd.IssueLoginToken(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, auth)
	if err != nil {
		return err
	}
	if err := s.wait.WaitFor(c.Request().Context(), res.Position); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"login_token": res.Token, "expires_in_ms": res.ExpiresIn.Milliseconds()})
}

// refresh: POST /_matrix/client/v3/refresh.
func (s *Server) refresh(c echo.Context) error {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.RefreshToken == "" {
		return errMissingParam("Missing refresh_token")
	}
	res, err := s.cmd.Refresh(c.Request().Context(), meta(c, eventlog.OriginClient), req.RefreshToken)
	if err != nil {
		return err
	}
	if err := s.wait.WaitFor(c.Request().Context(), res.Position); err != nil {
		return err
	}
	body := map[string]any{"access_token": res.AccessToken, "refresh_token": res.RefreshToken}
	if res.ExpiresIn > 0 {
		body["expires_in_ms"] = res.ExpiresIn.Milliseconds()
	}
	return c.JSON(nethttp.StatusOK, body)
}

// whoami: GET /_matrix/client/v3/account/whoami.
func (s *Server) whoami(c echo.Context) error {
	id := identity(c)
	return c.JSON(nethttp.StatusOK, map[string]any{"user_id": id.UserID, "device_id": id.DeviceID, "is_guest": id.IsGuest})
}

// logout: POST /_matrix/client/v3/logout. It answers once the token no longer works.
func (s *Server) logout(c echo.Context) error {
	id := identity(c)
	pos, err := s.cmd.Logout(c.Request().Context(), meta(c, eventlog.OriginClient), id.UserID, id.DeviceID)
	if err != nil {
		return err
	}
	if err := s.wait.WaitFor(c.Request().Context(), pos); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{})
}

// logoutAll: POST /_matrix/client/v3/logout/all.
func (s *Server) logoutAll(c echo.Context) error {
	id := identity(c)
	pos, err := s.cmd.LogoutAll(c.Request().Context(), meta(c, eventlog.OriginClient), id.UserID)
	if err != nil {
		return err
	}
	if err := s.wait.WaitFor(c.Request().Context(), pos); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{})
}

// retireRefreshToken runs on the first use of an access token that a refresh gave: the
// client has the new tokens, so the refresh token it used stops working (spec:
// "Refreshing access tokens"). A failure does not fail the request; the next use tries
// again.
func (s *Server) retireRefreshToken(c echo.Context, id queries.Identity) {
	ctx := c.Request().Context()
	pos, err := s.cmd.RetireRefreshToken(ctx, eventlog.Metadata{Origin: eventlog.OriginClient, Actor: id.UserID,
		RequestID: requestID(c)}, id.UserID, id.Retires)
	if err == nil {
		err = s.wait.WaitFor(ctx, pos)
	}
	if err != nil {
		s.logger.WarnContext(ctx, "retiring a refresh token failed", slog.Any("err", err))
	}
}
