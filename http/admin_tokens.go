package http

import (
	"encoding/json"
	"errors"
	nethttp "net/http"
	"time"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/queries"
)

// requireAdmin lets only server administrators through (after requireAuth).
func requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !identity(c).IsAdmin {
			return errForbidden("You are not a server admin")
		}
		return next(c)
	}
}

// registrationTokenJSON is Synapse's shape of a registration token (times in ms).
func registrationTokenJSON(t queries.RegistrationToken) map[string]any {
	out := map[string]any{"token": t.Token, "uses_allowed": nil, "pending": t.Pending, "completed": t.Completed, "expiry_time": nil}
	if t.UsesAllowed != nil {
		out["uses_allowed"] = *t.UsesAllowed
	}
	if t.ExpiryTime != nil {
		out["expiry_time"] = t.ExpiryTime.UnixMilli()
	}
	return out
}

// adminListRegistrationTokens: GET /_synapse/admin/v1/registration_tokens[?valid=true|false].
func (s *Server) adminListRegistrationTokens(c echo.Context) error {
	list, err := s.q.RegistrationTokens(c.Request().Context())
	if err != nil {
		return err
	}
	filter := c.QueryParam("valid")
	if filter != "" && filter != "true" && filter != "false" {
		return errInvalidParam("valid must be true or false")
	}
	now := time.Now()
	out := []map[string]any{}
	for _, t := range list {
		valid := commands.RegistrationTokenUsable(t.Revoked, t.UsesAllowed, t.Pending, t.Completed, t.ExpiryTime, now)
		if filter == "" || (filter == "true") == valid {
			out = append(out, registrationTokenJSON(t))
		}
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"registration_tokens": out})
}

// adminGetRegistrationToken: GET /_synapse/admin/v1/registration_tokens/{token}.
func (s *Server) adminGetRegistrationToken(c echo.Context) error {
	t, err := s.q.RegistrationTokenLookup(c.Request().Context(), c.Param("token"))
	if err == nil && t.Revoked {
		err = queries.ErrNotFound
	}
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, registrationTokenJSON(t))
}

// adminNewRegistrationToken: POST /_synapse/admin/v1/registration_tokens/new.
func (s *Server) adminNewRegistrationToken(c echo.Context) error {
	var req struct {
		Token       string `json:"token"`
		UsesAllowed *int32 `json:"uses_allowed"`
		ExpiryTime  *int64 `json:"expiry_time"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.UsesAllowed != nil && *req.UsesAllowed < 0 {
		return errInvalidParam("uses_allowed must be a non-negative integer or null")
	}
	var expiry *time.Time
	if req.ExpiryTime != nil {
		t, err := expiryTime(*req.ExpiryTime)
		if err != nil {
			return err
		}
		expiry = &t
	}
	token, pos, err := s.cmd.CreateRegistrationToken(c.Request().Context(), meta(c, eventlog.OriginAdmin), req.Token, req.UsesAllowed, expiry)
	if err != nil {
		return err
	}
	return s.respondRegistrationToken(c, token, pos)
}

// adminUpdateRegistrationToken: PUT /_synapse/admin/v1/registration_tokens/{token}.
func (s *Server) adminUpdateRegistrationToken(c echo.Context) error {
	var raw map[string]json.RawMessage
	if err := bindJSON(c, &raw); err != nil {
		return err
	}
	var ch commands.RegistrationTokenChange
	if v, ok := raw["uses_allowed"]; ok {
		if string(v) == "null" {
			ch.ClearUsesAllowed = true
		} else if err := json.Unmarshal(v, &ch.UsesAllowed); err != nil {
			return errInvalidParam("uses_allowed must be a non-negative integer or null")
		}
	}
	if v, ok := raw["expiry_time"]; ok {
		var ms *int64
		if err := json.Unmarshal(v, &ms); err != nil {
			return errInvalidParam("expiry_time must be an integer or null")
		}
		if ms == nil {
			ch.ClearExpiryTime = true
		} else {
			t, err := expiryTime(*ms)
			if err != nil {
				return err
			}
			ch.ExpiryTime = &t
		}
	}
	token := c.Param("token")
	pos, err := s.cmd.UpdateRegistrationToken(c.Request().Context(), meta(c, eventlog.OriginAdmin), token, ch)
	if err != nil {
		return err
	}
	return s.respondRegistrationToken(c, token, pos)
}

// adminDeleteRegistrationToken: DELETE /_synapse/admin/v1/registration_tokens/{token}.
func (s *Server) adminDeleteRegistrationToken(c echo.Context) error {
	pos, err := s.cmd.RevokeRegistrationToken(c.Request().Context(), meta(c, eventlog.OriginAdmin), c.Param("token"))
	if err != nil {
		return err
	}
	if err := s.wait.WaitFor(c.Request().Context(), pos); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{})
}

func (s *Server) respondRegistrationToken(c echo.Context, token string, pos eventlog.Position) error {
	if err := s.wait.WaitFor(c.Request().Context(), pos); err != nil {
		return err
	}
	t, err := s.q.RegistrationTokenLookup(c.Request().Context(), token)
	if errors.Is(err, queries.ErrNotFound) {
		return matrixErr(nethttp.StatusInternalServerError, codeUnknown, "token vanished")
	}
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, registrationTokenJSON(t))
}

// expiryTime reads a token's expiry_time (ms since the epoch): in the future, and not
// past year 9999, beyond which times cannot be written as RFC 3339.
func expiryTime(ms int64) (time.Time, error) {
	t := time.UnixMilli(ms).UTC()
	if t.Before(time.Now()) || t.Year() > 9999 {
		return time.Time{}, errInvalidParam("expiry_time must be a time in the future, before the year 10000")
	}
	return t, nil
}
