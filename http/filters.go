package http

import (
	"context"
	"encoding/json"
	nethttp "net/http"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
)

// FilterCommands store filters.
type FilterCommands interface {
	CreateFilter(ctx context.Context, meta commands.Meta, userID string, filter json.RawMessage) (string, eventlog.Position, error)
}

// FilterQueries read them.
type FilterQueries interface {
	Filter(ctx context.Context, userID, filterID string) (json.RawMessage, error)
}

// ownUser checks that the path's user is the requester: filters are one's own.
func ownUser(c echo.Context) error {
	if pathParam(c, "userId") != identity(c).UserID {
		return errForbidden("Cannot use filters of other users")
	}
	return nil
}

// createFilter: POST /_matrix/client/v3/user/{userId}/filter.
func (s *Server) createFilter(c echo.Context) error {
	if err := ownUser(c); err != nil {
		return err
	}
	var filter json.RawMessage
	if err := bindJSON(c, &filter); err != nil {
		return err
	}
	id, pos, err := s.cmd.CreateFilter(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, filter)
	if err != nil {
		return err
	}
	if err := s.wait.WaitFor(c.Request().Context(), pos, "filters"); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]string{"filter_id": id})
}

// getFilter: GET /_matrix/client/v3/user/{userId}/filter/{filterId}.
func (s *Server) getFilter(c echo.Context) error {
	if err := ownUser(c); err != nil {
		return err
	}
	f, err := s.q.Filter(c.Request().Context(), identity(c).UserID, pathParam(c, "filterId"))
	if err != nil {
		return err
	}
	return c.JSONBlob(nethttp.StatusOK, f)
}
