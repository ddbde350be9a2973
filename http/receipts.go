package http

import (
	"context"
	nethttp "net/http"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
)

// ReceiptCommands record receipts and read markers.
type ReceiptCommands interface {
	SendReceipt(ctx context.Context, meta commands.Meta, userID, roomID, receiptType, eventID, threadID string) (eventlog.Position, error)
}

// receipt: POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}.
func (s *Server) receipt(c echo.Context) error {
	var req struct {
		ThreadID *string `json:"thread_id"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	thread := ""
	if req.ThreadID != nil {
		if *req.ThreadID == "" {
			return errInvalidParam("thread_id must be a non-empty string")
		}
		thread = *req.ThreadID
	}
	pos, err := s.cmd.SendReceipt(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, pathParam(c, "roomId"),
		pathParam(c, "receiptType"), pathParam(c, "eventId"), thread)
	if err != nil {
		return err
	}
	return s.emptyWhenVisible(c, pos, "receipts", accountDataProjector)
}

// readMarkers: POST /_matrix/client/v3/rooms/{roomId}/read_markers.
func (s *Server) readMarkers(c echo.Context) error {
	var req struct {
		FullyRead   *string `json:"m.fully_read"`
		Read        *string `json:"m.read"`
		ReadPrivate *string `json:"m.read.private"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	var last eventlog.Position
	for _, m := range []struct {
		typ   string
		event *string
	}{{commands.ReceiptFullyRead, req.FullyRead}, {commands.ReceiptRead, req.Read}, {commands.ReceiptReadPrivate, req.ReadPrivate}} {
		if m.event == nil {
			continue
		}
		pos, err := s.cmd.SendReceipt(c.Request().Context(), meta(c, eventlog.OriginClient), identity(c).UserID, pathParam(c, "roomId"), m.typ, *m.event, "")
		if err != nil {
			return err
		}
		last = pos
	}
	if !last.IsZero() {
		if err := s.wait.WaitFor(c.Request().Context(), last, "receipts", accountDataProjector); err != nil {
			return err
		}
	}
	return c.JSON(nethttp.StatusOK, map[string]any{})
}
