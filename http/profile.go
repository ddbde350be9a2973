package http

import (
	"context"
	"encoding/json"
	nethttp "net/http"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/queries"
)

// ProfileCommands change profiles.
type ProfileCommands interface {
	SetProfileField(ctx context.Context, meta commands.Meta, userID, field string, value *string) (eventlog.Position, error)
}

// ProfileQueries read profiles.
type ProfileQueries interface {
	Profile(ctx context.Context, userID string) (queries.Profile, error)
}

// getProfile: GET /_matrix/client/v3/profile/{userId}. Profiles are public, as in
// Synapse's default configuration; users of other servers need federation.
func (s *Server) getProfile(c echo.Context) error {
	p, err := s.q.Profile(c.Request().Context(), pathParam(c, "userId"))
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, p)
}

// getProfileField: GET /_matrix/client/v3/profile/{userId}/{displayname|avatar_url}.
func (s *Server) getProfileField(field string) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := s.q.Profile(c.Request().Context(), pathParam(c, "userId"))
		if err != nil {
			return err
		}
		v := p.Displayname
		if field == "avatar_url" {
			v = p.AvatarURL
		}
		if v == nil {
			return errNotFound("The user has no %s", field)
		}
		return c.JSON(nethttp.StatusOK, map[string]string{field: *v})
	}
}

// putProfileField: PUT /_matrix/client/v3/profile/{userId}/{displayname|avatar_url}.
// An empty string or null removes the field.
func (s *Server) putProfileField(field string) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req map[string]json.RawMessage
		if err := bindJSON(c, &req); err != nil {
			return err
		}
		raw, ok := req[field]
		if !ok {
			return errMissingParam("Missing %s", field)
		}
		var value *string
		if err := json.Unmarshal(raw, &value); err != nil {
			return errBadJSON("%s must be a string", field)
		}
		if value != nil && *value == "" {
			value = nil
		}
		id := identity(c)
		if pathParam(c, "userId") != id.UserID {
			return errForbidden("You may only change your own profile")
		}
		pos, err := s.cmd.SetProfileField(c.Request().Context(), meta(c, eventlog.OriginClient), id.UserID, field, value)
		if err != nil {
			return err
		}
		return s.emptyWhenVisible(c, pos, "profiles", "rooms")
	}
}
