package http

import (
	nethttp "net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"
)

// typing: PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId}. Typing is not written
// to the log (see package typing).
func (s *Server) typing(c echo.Context) error {
	if err := ownUser(c); err != nil {
		return err
	}
	var req struct {
		Typing  *bool  `json:"typing"`
		Timeout *int64 `json:"timeout"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.Typing == nil {
		return errMissingParam("Missing typing")
	}
	timeout := 30 * time.Second
	if req.Timeout != nil {
		if *req.Timeout < 0 {
			return errInvalidParam("timeout must not be negative")
		}
		timeout = time.Duration(*req.Timeout) * time.Millisecond
	}
	user, room := identity(c).UserID, pathParam(c, "roomId")
	rooms, err := s.q.JoinedRooms(c.Request().Context(), user)
	if err != nil {
		return err
	}
	if !slices.Contains(rooms, room) {
		return errForbidden("You are not in this room")
	}
	s.cfg.Typing.Set(c.Request().Context(), room, user, *req.Typing, timeout)
	return c.JSON(nethttp.StatusOK, map[string]any{})
}
