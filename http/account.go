package http

import (
	nethttp "net/http"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
)

type changePasswordRequest struct {
	NewPassword   string    `json:"new_password"`
	LogoutDevices *bool     `json:"logout_devices"`
	Auth          *authDict `json:"auth"`
}

// changePassword: POST /_matrix/client/v3/account/password.
func (s *Server) changePassword(c echo.Context) error {
	var req changePasswordRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	auth, err := req.Auth.command()
	if err != nil {
		return err
	}
	if req.NewPassword == "" && auth != nil {
		return errMissingParam("Missing new_password")
	}
	id := identity(c)
	if id.UserID == "" {
		return s.resetPassword(c, req, auth)
	}
	pos, err := s.cmd.ChangePassword(c.Request().Context(), meta(c, eventlog.OriginClient), commands.ChangePassword{
		UserID: id.UserID, DeviceID: id.DeviceID, NewPassword: req.NewPassword,
		LogoutDevices: req.LogoutDevices == nil || *req.LogoutDevices, Auth: auth,
	})
	if err != nil {
		return err
	}
	if err := s.wait.WaitFor(c.Request().Context(), pos); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{})
}

type deactivateRequest struct {
	Auth     *authDict `json:"auth"`
	Erase    bool      `json:"erase"`
	IDServer string    `json:"id_server"`
}

// deactivate: POST /_matrix/client/v3/account/deactivate.
func (s *Server) deactivate(c echo.Context) error {
	var req deactivateRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	auth, err := req.Auth.command()
	if err != nil {
		return err
	}
	pos, result, err := s.cmd.Deactivate(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, req.Erase, req.IDServer, auth)
	if err != nil {
		return err
	}
	if err := s.wait.WaitFor(c.Request().Context(), pos); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]string{"id_server_unbind_result": result})
}

// capabilities: GET /_matrix/client/v3/capabilities.
func (s *Server) capabilities(c echo.Context) error {
	available := map[string]string{}
	for _, v := range s.cfg.RoomVersions {
		available[v] = "stable"
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"capabilities": map[string]any{
		"m.change_password": map[string]bool{"enabled": true},
		// 3PIDs can change when Spelt can send e-mail.
		"m.set_displayname": map[string]bool{"enabled": true},
		"m.set_avatar_url":  map[string]bool{"enabled": true},
		"m.3pid_changes":    map[string]bool{"enabled": s.cfg.Mailer != nil},
		"m.get_login_token": map[string]bool{"enabled": true},
		"m.room_versions":   map[string]any{"default": s.cfg.DefaultRoomVersion, "available": available},
	}})
}
