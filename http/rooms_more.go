package http

import (
	"context"
	"crypto/rand"
	"math/big"
	nethttp "net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/queries"
)

// MoreRoomCommands are the room writes beyond events and membership.
type MoreRoomCommands interface {
	UpgradeRoom(ctx context.Context, meta commands.Meta, roomID, user, version string) (commands.RoomCreated, error)
	Report(ctx context.Context, meta commands.Meta, roomID, eventID, reporter, reason string, score *int) (eventlog.Position, error)
}

// MoreRoomQueries are the room reads beyond events and state.
type MoreRoomQueries interface {
	InitialSync(ctx context.Context, v queries.Viewer, roomID string, limit int) (queries.RoomInitialSync, error)
	Hierarchy(ctx context.Context, v queries.Viewer, req queries.HierarchyRequest) (queries.Hierarchy, error)
}

// upgradeRoom: POST /_matrix/client/v3/rooms/{roomId}/upgrade.
func (s *Server) upgradeRoom(c echo.Context) error {
	var req struct {
		NewVersion *string `json:"new_version"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.NewVersion == nil {
		return errMissingParam("Missing new_version")
	}
	res, err := s.cmd.UpgradeRoom(c.Request().Context(), meta(c, eventlog.OriginClient), pathParam(c, "roomId"), identity(c).UserID, *req.NewVersion)
	if err != nil {
		return err
	}
	if err := s.waitRooms(c, res.Position); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{"replacement_room": res.RoomID})
}

// reportDelay is the random delay before a report's answer: without it a client could
// tell from the time taken whether an event exists in a room it is not in (spec: POST
// /rooms/{roomId}/report/{eventId}).
func reportDelay(ctx context.Context) {
	n, err := rand.Int(rand.Reader, big.NewInt(100))
	if err != nil {
		return
	}
	t := time.NewTimer(time.Duration(n.Int64()) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// reportEvent: POST /_matrix/client/v3/rooms/{roomId}/report/{eventId}.
func (s *Server) reportEvent(c echo.Context) error {
	var req struct {
		Reason string `json:"reason"`
		Score  *int   `json:"score"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	_, err := s.cmd.Report(c.Request().Context(), meta(c, eventlog.OriginClient), pathParam(c, "roomId"), pathParam(c, "eventId"),
		identity(c).UserID, req.Reason, req.Score)
	reportDelay(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{})
}

// reportRoom: POST /_matrix/client/v3/rooms/{roomId}/report.
func (s *Server) reportRoom(c echo.Context) error {
	var req struct {
		Reason *string `json:"reason"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.Reason == nil {
		return errMissingParam("Missing reason")
	}
	if _, err := s.cmd.Report(c.Request().Context(), meta(c, eventlog.OriginClient), pathParam(c, "roomId"), "",
		identity(c).UserID, *req.Reason, nil); err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, map[string]any{})
}

// roomInitialSync: GET /_matrix/client/v3/rooms/{roomId}/initialSync.
func (s *Server) roomInitialSync(c echo.Context) error {
	limit, err := limitParam(c, 10)
	if err != nil {
		return err
	}
	res, err := s.q.InitialSync(c.Request().Context(), viewer(c), pathParam(c, "roomId"), min(limit, 100))
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, res)
}

// hierarchy: GET /_matrix/client/v1/rooms/{roomId}/hierarchy.
func (s *Server) hierarchy(c echo.Context) error {
	req := queries.HierarchyRequest{RoomID: pathParam(c, "roomId"), MaxDepth: -1, From: c.QueryParam("from")}
	switch c.QueryParam("suggested_only") {
	case "", "false":
	case "true":
		req.SuggestedOnly = true
	default:
		return errInvalidParam("suggested_only must be true or false")
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return errInvalidParam("limit must be an integer greater than zero")
		}
		req.Limit = n
	}
	if v := c.QueryParam("max_depth"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errInvalidParam("max_depth must be a non-negative integer")
		}
		req.MaxDepth = n
	}
	res, err := s.q.Hierarchy(c.Request().Context(), viewer(c), req)
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, res)
}
