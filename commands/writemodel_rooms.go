package commands

import (
	"context"
	"encoding/json"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pdus"
	"spelt.dev/spelt/sql/gen/writedb"
)

// roomWriteModelTables are the write model's room tables.
var roomWriteModelTables = []string{
	"writemodel.rooms", "writemodel.room_events", "writemodel.room_state",
	"writemodel.room_txns", "writemodel.room_aliases",
}

func init() { writeModelTables = append(writeModelTables, roomWriteModelTables...) }

// extremity is a forward extremity of a room as the write model keeps it: enough to
// refer to it in prev_events. Extremities written before Hash was kept have the PDU
// instead, which the hash is computed from.
type extremity struct {
	EventID string          `json:"event_id"`
	Depth   int64           `json:"depth"`
	Hash    []byte          `json:"hash,omitempty"` // room versions 1 and 2
	PDU     json.RawMessage `json:"pdu,omitempty"`
}

// acceptedEvent is the payload of a room event a command built, with the event parsed:
// it marshals as the RoomEventAccepted it embeds.
type acceptedEvent struct {
	eventlog.RoomEventAccepted
	ev *pdus.Event
}

// applyRoomWriteModel derives the room tables' rows from e.
func applyRoomWriteModel(ctx context.Context, db writedb.DBTX, q *writedb.Queries, e eventlog.Event) error {
	switch e.Type {
	case eventlog.TypeRoomEventAccepted:
		var d eventlog.RoomEventAccepted
		if err := e.Decode(&d); err != nil {
			return err
		}
		ev, err := pdus.Parse(d.RoomVersion, d.EventID, d.PDU)
		if err != nil {
			return err
		}
		return applyRoomEvent(ctx, db, q, d, ev)
	case eventlog.TypeToDeviceSent:
		var d eventlog.ToDeviceSent
		if err := e.Decode(&d); err != nil {
			return err
		}
		return q.RoomTxnInsert(ctx, db, writedb.RoomTxnInsertParams{UserID: d.Sender, DeviceID: d.SenderDevice, Scope: "sendToDevice", TxnID: d.TxnID, EventID: "-"})
	case eventlog.TypeRoomPublished:
		var d eventlog.RoomPublished
		if err := e.Decode(&d); err != nil {
			return err
		}
		return q.RoomSetPublished(ctx, db, writedb.RoomSetPublishedParams{RoomID: d.RoomID, Published: d.Public})
	case eventlog.TypeAliasCreated:
		var d eventlog.AliasCreated
		if err := e.Decode(&d); err != nil {
			return err
		}
		return q.RoomAliasInsert(ctx, db, writedb.RoomAliasInsertParams{Alias: d.Alias, RoomID: d.RoomID, Creator: d.Creator})
	case eventlog.TypeAliasDeleted:
		var d eventlog.AliasDeleted
		if err := e.Decode(&d); err != nil {
			return err
		}
		return q.RoomAliasDelete(ctx, db, d.Alias)
	}
	return nil
}

// applyRoomEvent derives the room tables' rows from a room event (d, parsed as ev).
func applyRoomEvent(ctx context.Context, db writedb.DBTX, q *writedb.Queries, d eventlog.RoomEventAccepted, ev *pdus.Event) error {
	p := ev.PDU
	ref := ev.Ref()
	ext, err := json.Marshal(extremity{EventID: ref.ID, Depth: p.Depth, Hash: ref.Hash})
	if err != nil {
		return err
	}
	var raw []byte
	if ev.IsState() {
		raw = d.PDU
	}
	if ev.Type() == "m.room.create" && p.StateKey != nil && *p.StateKey == "" {
		if err := q.RoomInsert(ctx, db, writedb.RoomInsertParams{RoomID: d.RoomID, RoomVersion: d.RoomVersion, MaxDepth: p.Depth,
			Extremity: ext}); err != nil {
			return err
		}
		if err := q.RoomEventInsert(ctx, db, writedb.RoomEventInsertParams{
			EventID: d.EventID, RoomID: d.RoomID, Sender: ev.Sender(), Type: ev.Type(), StateKey: p.StateKey, Depth: p.Depth, Pdu: raw,
		}); err != nil {
			return err
		}
		if d.TxnID != "" {
			if err := q.RoomTxnInsert(ctx, db, writedb.RoomTxnInsertParams{
				UserID: ev.Sender(), DeviceID: d.DeviceID, Scope: d.TxnScope, TxnID: d.TxnID, EventID: d.EventID,
			}); err != nil {
				return err
			}
		}
	} else {
		prev := make([]string, len(p.PrevEvents))
		for i, id := range p.PrevEvents {
			prev[i] = string(id)
		}
		if err := q.RoomEventAdd(ctx, db, writedb.RoomEventAddParams{
			EventID: d.EventID, RoomID: d.RoomID, Sender: ev.Sender(), Type: ev.Type(), StateKey: p.StateKey, Depth: p.Depth, Pdu: raw,
			PrevEvents: prev, Extremity: ext, DeviceID: d.DeviceID, Scope: d.TxnScope, TxnID: d.TxnID,
		}); err != nil {
			return err
		}
	}
	if key, ok := ev.StateKey(); ok {
		var membership *string
		if ev.Type() == "m.room.member" {
			m := ev.Membership()
			membership = &m
		}
		if err := q.RoomStateSet(ctx, db, writedb.RoomStateSetParams{
			RoomID: d.RoomID, Type: ev.Type(), StateKey: key, EventID: d.EventID, Membership: membership,
		}); err != nil {
			return err
		}
	}
	return nil
}
