package commands

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/sql/gen/writedb"
)

// Receipt types.
const (
	ReceiptRead        = "m.read"
	ReceiptReadPrivate = "m.read.private"
	ReceiptFullyRead   = "m.fully_read"
)

// SendReceipt records that the user read a room up to eventID (POST
// /rooms/{roomId}/receipt/{receiptType}/{eventId}); m.fully_read moves the read marker,
// the room account data of that type. The user must be joined and the event in the room.
func (c *Commands) SendReceipt(ctx context.Context, meta Meta, userID, roomID, receiptType, eventID, threadID string) (eventlog.Position, error) {
	switch receiptType {
	case ReceiptRead, ReceiptReadPrivate, ReceiptFullyRead:
	default:
		return eventlog.Position{}, badRequest("unknown receipt type %q", receiptType)
	}
	if threadID != "" && receiptType == ReceiptFullyRead {
		return eventlog.Position{}, badRequest("m.fully_read has no thread")
	}
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		ev, err := c.q.RoomEventGet(ctx, tx, eventID)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && ev.RoomID != roomID {
			return nil, ErrEventNotFound
		}
		if err != nil {
			return nil, err
		}
		members, err := c.q.RoomStateEvents(ctx, tx, writedb.RoomStateEventsParams{RoomID: roomID, Types: []string{"m.room.member"}, StateKeys: []string{userID}})
		if err != nil {
			return nil, err
		}
		if len(members) == 0 || memberOf(members[0].Pdu) != "join" {
			return nil, forbidden("you are not in the room")
		}
		if receiptType == ReceiptFullyRead {
			content, err := json.Marshal(map[string]string{"event_id": eventID})
			if err != nil {
				return nil, err
			}
			return []eventlog.NewEvent{{Stream: eventlog.AccountDataStream(userID), Type: eventlog.TypeAccountDataSet, ExpectVersion: eventlog.AnyVersion,
				Data: eventlog.AccountDataSet{UserID: userID, RoomID: roomID, Type: ReceiptFullyRead, Content: content}}}, nil
		}
		return []eventlog.NewEvent{{Stream: eventlog.ReceiptStream(userID), Type: eventlog.TypeReceiptSent, ExpectVersion: eventlog.AnyVersion,
			Data: eventlog.ReceiptSent{RoomID: roomID, UserID: userID, Type: receiptType, EventID: eventID, ThreadID: threadID, TS: c.now().UnixMilli()}}}, nil
	})
}
