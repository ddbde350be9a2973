package http

import (
	"context"
	nethttp "net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/queries"
)

// LegacySyncQueries answer the deprecated sync endpoints.
type LegacySyncQueries interface {
	GlobalInitialSync(ctx context.Context, v queries.Viewer, limit int, archived bool) (queries.LegacyInitialSync, error)
	PeekEvents(ctx context.Context, v queries.Viewer, roomID string, since queries.SyncToken) (queries.LegacyEvents, error)
	SyncPositions(ctx context.Context) (queries.SyncToken, error)
}

// initialSync: GET /_matrix/client/v3/initialSync (deprecated).
func (s *Server) initialSync(c echo.Context) error {
	limit, err := limitParam(c, 10)
	if err != nil {
		return err
	}
	archived := false
	switch c.QueryParam("archived") {
	case "", "false":
	case "true":
		archived = true
	default:
		return errInvalidParam("archived must be true or false")
	}
	res, err := s.q.GlobalInitialSync(c.Request().Context(), viewer(c), min(limit, 100), archived)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, res)
}

// events: GET /_matrix/client/v3/events (deprecated): the events after from, waiting
// up to timeout for some.
func (s *Server) events(c echo.Context) error {
	ctx := c.Request().Context()
	roomID := c.QueryParam("room_id")
	var since queries.SyncToken
	if v := c.QueryParam("from"); v != "" {
		t, err := queries.ParseSyncToken(v)
		if err != nil {
			return err
		}
		since = t
	} else {
		now, err := s.q.SyncPositions(ctx)
		if err != nil {
			return err
		}
		now.Acked = now.ToDevice
		since = now
	}
	timeout := 30 * time.Second
	if v := c.QueryParam("timeout"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			return errInvalidParam("timeout must be a non-negative number of milliseconds")
		}
		timeout = min(time.Duration(ms)*time.Millisecond, maxSyncTimeout)
	}
	if roomID != "" {
		// Peeking: one room's events, which the viewer may see without being in it.
		deadline := time.Now().Add(timeout)
		for {
			moved := s.wait.Moved("rooms")
			out, err := s.q.PeekEvents(ctx, viewer(c), roomID, since)
			if err != nil {
				return err
			}
			left := time.Until(deadline)
			if len(out.Chunk) > 0 || left <= 0 || !waitAny(ctx, []<-chan struct{}{moved}, left) {
				return c.JSON(nethttp.StatusOK, out)
			}
		}
	}
	limit := 100
	req := queries.SyncRequest{Since: &since}
	req.Filter.Room.Timeline.Limit = &limit
	deadline := time.Now().Add(timeout)
	for {
		moved := make([]<-chan struct{}, 0, len(syncProjectors))
		for _, p := range syncProjectors {
			moved = append(moved, s.wait.Moved(p))
		}
		res, err := s.q.Sync(ctx, viewer(c), req)
		if err != nil {
			return err
		}
		out := res.Flatten(since.String())
		left := time.Until(deadline)
		if len(out.Chunk) > 0 || left <= 0 || !waitAny(ctx, moved, left) {
			return c.JSON(nethttp.StatusOK, out)
		}
	}
}
