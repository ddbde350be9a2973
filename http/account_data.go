package http

import (
	"context"
	"encoding/json"
	nethttp "net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
)

// AccountDataCommands write account data and tags.
type AccountDataCommands interface {
	SetAccountData(ctx context.Context, meta commands.Meta, userID, roomID, typ string, content json.RawMessage) (eventlog.Position, error)
	SetRoomTag(ctx context.Context, meta commands.Meta, userID, roomID, tag string, content json.RawMessage) (eventlog.Position, error)
	RemoveRoomTag(ctx context.Context, meta commands.Meta, userID, roomID, tag string) (eventlog.Position, error)
}

// AccountDataQueries read them.
type AccountDataQueries interface {
	AccountData(ctx context.Context, userID, roomID, typ string) (json.RawMessage, error)
	RoomTags(ctx context.Context, userID, roomID string) (map[string]json.RawMessage, error)
}

// accountDataProjector is the projector account data reads depend on.
const accountDataProjector = "account_data"

// roomParam is the path's room ID, which must look like one (M_INVALID_PARAM).
func roomParam(c echo.Context) (string, error) {
	r := pathParam(c, "roomId")
	if local, server, ok := strings.Cut(r, ":"); !ok || !strings.HasPrefix(local, "!") || server == "" {
		return "", errInvalidParam("%q is not a room ID", r)
	}
	return r, nil
}

// ownScope checks that the path's user is the caller, and returns the path's room ID
// when room is set ("" otherwise).
func ownScope(c echo.Context, room bool) (string, error) {
	if err := ownUser(c); err != nil {
		return "", err
	}
	if !room {
		return "", nil
	}
	return roomParam(c)
}

// putAccountData: PUT /user/{userId}/account_data/{type} and
// /user/{userId}/rooms/{roomId}/account_data/{type}.
func (s *Server) putAccountData(room bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		roomID, err := ownScope(c, room)
		if err != nil {
			return err
		}
		content, err := readContent(c)
		if err != nil {
			return err
		}
		pos, err := s.cmd.SetAccountData(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, roomID, pathParam(c, "type"), content)
		if err != nil {
			return err
		}
		return s.emptyWhenVisible(c, pos, accountDataProjector)
	}
}

// getAccountData: GET /user/{userId}[/rooms/{roomId}]/account_data/{type}.
func (s *Server) getAccountData(room bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		roomID, err := ownScope(c, room)
		if err != nil {
			return err
		}
		content, err := s.q.AccountData(c.Request().Context(), identity(c).UserID, roomID, pathParam(c, "type"))
		if err != nil {
			return err
		}
		return c.JSONBlob(nethttp.StatusOK, content)
	}
}

// getTags: GET /user/{userId}/rooms/{roomId}/tags.
func (s *Server) getTags(c echo.Context) error {
	roomID, err := ownScope(c, true)
	if err != nil {
		return err
	}
	tags, err := s.q.RoomTags(c.Request().Context(), identity(c).UserID, roomID)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"tags": tags})
}

// putTag: PUT /user/{userId}/rooms/{roomId}/tags/{tag}.
func (s *Server) putTag(c echo.Context) error {
	roomID, err := ownScope(c, true)
	if err != nil {
		return err
	}
	content, err := readContent(c)
	if err != nil {
		return err
	}
	pos, err := s.cmd.SetRoomTag(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, roomID, pathParam(c, "tag"), content)
	if err != nil {
		return err
	}
	return s.emptyWhenVisible(c, pos, accountDataProjector)
}

// deleteTag: DELETE /user/{userId}/rooms/{roomId}/tags/{tag}.
func (s *Server) deleteTag(c echo.Context) error {
	roomID, err := ownScope(c, true)
	if err != nil {
		return err
	}
	pos, err := s.cmd.RemoveRoomTag(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, roomID, pathParam(c, "tag"))
	if err != nil {
		return err
	}
	return s.emptyWhenVisible(c, pos, accountDataProjector)
}
