package commands

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/sql/gen/writedb"
)

// ReportStream is the stream of the reports about one room.
func reportStream(roomID string) string { return "reports:" + roomID }

// Report files a report about a room, or about one of its events when eventID is not
// empty (spec: client-server API, "Reporting content"). Reporting an event needs the
// reporter to be joined; an event that does not exist, is in another room or was
// redacted is ErrEventNotFound, like a room the reporter is not in. Reporting a room
// needs only that the room exists.
func (c *Commands) Report(ctx context.Context, meta Meta, roomID, eventID, reporter, reason string, score *int) (eventlog.Position, error) {
	if score != nil && (*score < -100 || *score > 0) {
		return eventlog.Position{}, badRequest("score must be between -100 and 0")
	}
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		if _, err := c.q.RoomGet(ctx, tx, roomID); errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrRoomNotFound
		} else if err != nil {
			return nil, err
		}
		if eventID != "" {
			ev, err := c.q.RoomEventGet(ctx, tx, eventID)
			if errors.Is(err, pgx.ErrNoRows) || err == nil && ev.RoomID != roomID {
				return nil, ErrEventNotFound
			}
			if err != nil {
				return nil, err
			}
			members, err := c.q.RoomStateEvents(ctx, tx, writedb.RoomStateEventsParams{RoomID: roomID, Types: []string{"m.room.member"}, StateKeys: []string{reporter}})
			if err != nil {
				return nil, err
			}
			if len(members) == 0 || memberOf(members[0].Pdu) != "join" {
				return nil, ErrEventNotFound
			}
		}
		return []eventlog.NewEvent{{Stream: reportStream(roomID), Type: eventlog.TypeEventReported, ExpectVersion: eventlog.AnyVersion,
			Data: eventlog.EventReported{RoomID: roomID, EventID: eventID, Reporter: reporter, Reason: reason, Score: score}}}, nil
	})
}
