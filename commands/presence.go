package commands

import (
	"context"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
)

// SetPresence records the user's presence (online, unavailable or offline) and status
// message (spec: client-server API, "Presence").
func (c *Commands) SetPresence(ctx context.Context, meta Meta, userID, presence string, statusMsg *string) (eventlog.Position, error) {
	switch presence {
	case "online", "unavailable", "offline":
	default:
		return eventlog.Position{}, badRequest("presence must be online, unavailable or offline")
	}
	if statusMsg != nil && len(*statusMsg) > 1024 {
		return eventlog.Position{}, badRequest("status_msg is longer than 1024 bytes")
	}
	return c.run(ctx, meta, func(context.Context, pgx.Tx) ([]eventlog.NewEvent, error) {
		return []eventlog.NewEvent{{Stream: eventlog.PresenceStream(userID), Type: eventlog.TypePresenceSet, ExpectVersion: eventlog.AnyVersion,
			Data: eventlog.PresenceSet{UserID: userID, Presence: presence, StatusMsg: statusMsg}}}, nil
	})
}
