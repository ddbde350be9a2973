package http

import (
	"context"
	"encoding/json"

	"github.com/labstack/echo/v4"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
)

// ToDeviceCommands send and acknowledge to-device messages.
type ToDeviceCommands interface {
	SendToDevice(ctx context.Context, meta commands.Meta, sender, senderDevice, typ, txnID string, messages map[string]map[string]json.RawMessage) (eventlog.Position, error)
	AcknowledgeToDevice(ctx context.Context, meta commands.Meta, userID, deviceID string, upTo int64) (eventlog.Position, error)
}

// sendToDevice: PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}.
func (s *Server) sendToDevice(c echo.Context) error {
	var req struct {
		Messages *map[string]map[string]json.RawMessage `json:"messages"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.Messages == nil {
		return errMissingParam("Missing messages")
	}
	for _, devices := range *req.Messages {
		for _, content := range devices {
			if len(content) == 0 || content[0] != '{' {
				return errBadJSON("each message must be a JSON object")
			}
		}
	}
	id := identity(c)
	pos, err := s.cmd.SendToDevice(c.Request().Context(), meta(c, eventlog.OriginClient), id.UserID, id.DeviceID,
		pathParam(c, "eventType"), pathParam(c, "txnId"), *req.Messages)
	if err != nil {
		return err
	}
	return s.emptyWhenVisible(c, pos, "to_device")
}
