package commands

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
)

// ErrServerControlled is account data only the server sets (m.push_rules, and a room's
// m.fully_read, which read markers set).
var ErrServerControlled = errors.New("this type of account data is controlled by the server")

// SetAccountData stores the user's account data of typ, in roomID or global when roomID
// is empty (PUT /user/{userId}[/rooms/{roomId}]/account_data/{type}).
func (c *Commands) SetAccountData(ctx context.Context, meta Meta, userID, roomID, typ string, content json.RawMessage) (eventlog.Position, error) {
	if typ == "" || len(typ) > 255 {
		return eventlog.Position{}, badRequest("the account data type must be 1 to 255 bytes")
	}
	if roomID == "" && typ == "m.push_rules" || roomID != "" && typ == "m.fully_read" {
		return eventlog.Position{}, ErrServerControlled
	}
	return c.appendAccountData(ctx, meta, userID, eventlog.TypeAccountDataSet,
		eventlog.AccountDataSet{UserID: userID, RoomID: roomID, Type: typ, Content: content})
}

// SetRoomTag tags a room for the user (PUT /user/{userId}/rooms/{roomId}/tags/{tag}).
func (c *Commands) SetRoomTag(ctx context.Context, meta Meta, userID, roomID, tag string, content json.RawMessage) (eventlog.Position, error) {
	if tag == "" || len(tag) > 255 {
		return eventlog.Position{}, badRequest("a tag must be 1 to 255 bytes")
	}
	var c2 struct {
		Order *float64 `json:"order"`
	}
	if err := json.Unmarshal(content, &c2); err != nil {
		return eventlog.Position{}, &BadJSONError{Reason: "order must be a number"}
	}
	return c.appendAccountData(ctx, meta, userID, eventlog.TypeRoomTagSet,
		eventlog.RoomTagSet{UserID: userID, RoomID: roomID, Tag: tag, Content: content})
}

// RemoveRoomTag removes a tag (DELETE /user/{userId}/rooms/{roomId}/tags/{tag}); removing
// a tag the room does not have is not an error.
func (c *Commands) RemoveRoomTag(ctx context.Context, meta Meta, userID, roomID, tag string) (eventlog.Position, error) {
	return c.appendAccountData(ctx, meta, userID, eventlog.TypeRoomTagRemoved,
		eventlog.RoomTagRemoved{UserID: userID, RoomID: roomID, Tag: tag})
}

func (c *Commands) appendAccountData(ctx context.Context, meta Meta, userID, typ string, data any) (eventlog.Position, error) {
	return c.run(ctx, meta, func(context.Context, pgx.Tx) ([]eventlog.NewEvent, error) {
		return []eventlog.NewEvent{{Stream: eventlog.AccountDataStream(userID), Type: typ, Data: data, ExpectVersion: eventlog.AnyVersion}}, nil
	})
}
