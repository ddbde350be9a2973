package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tidwall/gjson"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pdus"
	"spelt.dev/spelt/internal/pgbatch"
)

// SendEvent is a client's message or state event.
type SendEvent struct {
	RoomID   string
	Sender   string
	DeviceID string
	Type     string
	// StateKey makes the event a state event.
	StateKey *string
	Content  json.RawMessage
	// TxnID is the client's transaction ID (message events): a retry with the same one
	// from the same device gets the first attempt's event.
	TxnID string
}

// Sent is the outcome of a send.
type Sent struct {
	EventID  string
	Position eventlog.Position // zero when nothing new was appended
}

// Send appends a message or state event to a room.
func (c *Commands) Send(ctx context.Context, meta Meta, req SendEvent) (Sent, error) {
	var out Sent
	if len(req.Type) > 255 {
		return out, badRequest("event type is longer than 255 bytes")
	}
	if req.StateKey != nil && len(*req.StateKey) > 255 {
		return out, badRequest("state key is longer than 255 bytes")
	}
	var txn *txnRef
	if req.TxnID != "" {
		txn = &txnRef{DeviceID: req.DeviceID, Scope: "send:" + req.RoomID, TxnID: req.TxnID}
	}
	only := c.rooms.startSend(req.RoomID)
	defer c.rooms.endSend(req.RoomID)
	if only && req.StateKey == nil && req.Type != "m.room.redaction" {
		if sent, ok, err := c.sendAhead(ctx, meta, req, txn); ok || err != nil {
			return sent, err
		}
	}
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		proto := pdus.Proto{Sender: req.Sender, Type: req.Type, StateKey: req.StateKey, Content: req.Content}
		preload := authKeys(proto)
		if req.StateKey != nil {
			preload = append(preload, pdus.StateKey{Type: req.Type, StateKey: *req.StateKey})
		}
		r, earlier, err := c.openRoom(ctx, tx, req.RoomID, opening{preload: preload, user: req.Sender, txn: txn})
		if err != nil || earlier != "" {
			out.EventID = earlier
			return nil, err
		}
		if req.Type == "m.room.redaction" && req.StateKey == nil && r.rv().RedactsInContent() {
			// From room version 11 an m.room.redaction sent as a message redacts
			// content.redacts: it needs the permission the redact endpoint checks.
			if target := gjson.GetBytes(req.Content, "redacts"); target.Type == gjson.String {
				if err := r.checkRedaction(ctx, req.Sender, target.Str); err != nil {
					return nil, err
				}
			}
		}
		if req.StateKey != nil {
			if err := checkStateContent(ctx, r, req.Type, *req.StateKey, req.Content); err != nil {
				return nil, err
			}
			// A state event equal to the current one changes nothing: answer with the
			// current one, as Synapse does.
			cur, err := r.current(ctx, req.Type, *req.StateKey)
			if err != nil {
				return nil, err
			}
			if cur != nil && cur.Sender() == req.Sender && jsonEqual(cur.PDU.Content, req.Content) {
				out.EventID = cur.ID
				return nil, nil
			}
		}
		ev, err := r.add(ctx, proto, txn)
		if err != nil {
			return nil, err
		}
		out.EventID = ev.ID
		return r.news, nil
	})
	out.Position = pos
	return out, err
}

// sendAhead sends a message event in one round trip when this process remembers the
// room as its last write here left it (roomMemo) and no other send of this process is
// under way in it: the event is built and checked against the remembered state, and
// appended as the version after the remembered head of the room's stream, without the
// room's lock or any read. A write to the room since then (another process's, or one of
// this process that did not go through the memo) takes that version first and makes the
// append conflict; a retried client transaction conflicts with its first attempt's.
// Then nothing is written and ok is false: the caller takes the way that reads the room
// under its lock, which also gives the authoritative answer when the event is refused.
func (c *Commands) sendAhead(ctx context.Context, meta Meta, req SendEvent, txn *txnRef) (out Sent, ok bool, err error) {
	memo := c.rooms.get(req.RoomID)
	if memo == nil || memo.hash == nil {
		return out, false, nil
	}
	proto := pdus.Proto{Sender: req.Sender, Type: req.Type, Content: req.Content}
	for _, k := range pdus.AuthSelection(memo.version, proto) {
		if _, known := memo.state[k]; !known {
			return out, false, nil
		}
	}
	r := &room{c: c, id: req.RoomID, version: memo.version, depth: memo.depth, extremities: memo.extremities,
		state: maps.Clone(memo.state), head: memo.head, hash: memo.hash, whole: true}
	ev, err := r.add(ctx, proto, txn)
	if err != nil {
		return out, false, nil
	}
	tx, err := pgbatch.BeginLazy(ctx, c.pool)
	if err != nil {
		return out, false, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // closed by the commit
	known := map[string]eventlog.StreamHead{eventlog.RoomStream(r.id): {Version: memo.head, Hash: memo.hash}}
	events, err := c.commit(ctx, tx, meta, known, r.news)
	if errors.Is(err, eventlog.ErrVersionConflict) || isUniqueViolation(err, "room_txns_pkey") {
		c.rooms.drop(r.id)
		return out, false, nil
	}
	if err != nil {
		return out, false, err
	}
	r.remember(events)
	return Sent{EventID: ev.ID, Position: events[len(events)-1].Position}, true, nil
}

// isUniqueViolation reports whether err is a unique violation of constraint.
func isUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == constraint
}

// Redact redacts an event of a room (spec: client-server API, "Redactions"). The
// sender may redact their own events, and others' with the redact power level.
func (c *Commands) Redact(ctx context.Context, meta Meta, roomID, sender, deviceID, eventID, txnID, reason string) (Sent, error) {
	var out Sent
	txn := &txnRef{DeviceID: deviceID, Scope: "redact:" + roomID, TxnID: txnID}
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		r, earlier, err := c.openRoom(ctx, tx, roomID, opening{preload: authKeys(pdus.Proto{Sender: sender, Type: "m.room.redaction"}), user: sender, txn: txn})
		if err != nil || earlier != "" {
			out.EventID = earlier
			return nil, err
		}
		if err := r.checkRedaction(ctx, sender, eventID); err != nil {
			return nil, err
		}
		body := map[string]any{}
		if reason != "" {
			body["reason"] = reason
		}
		if r.rv().RedactsInContent() {
			body["redacts"] = eventID
		}
		ev, err := r.add(ctx, pdus.Proto{Sender: sender, Type: "m.room.redaction", Content: content(body), Redacts: eventID}, txn)
		if err != nil {
			return nil, err
		}
		out.EventID = ev.ID
		return r.news, nil
	})
	out.Position = pos
	return out, err
}

// checkRedaction checks that sender may redact eventID, an event of the room: their
// own events, others' with the redact power level.
func (r *room) checkRedaction(ctx context.Context, sender, eventID string) error {
	target, err := r.c.q.RoomEventGet(ctx, r.tx, eventID)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && target.RoomID != r.id {
		return ErrEventNotFound
	}
	if err != nil {
		return fmt.Errorf("redact: %w", err)
	}
	if target.Sender != sender {
		pl, err := r.levels(ctx)
		if err != nil {
			return err
		}
		if pl.UserLevel(sender) < pl.ActionLevel("redact") {
			return forbidden("you may only redact your own events: redacting others' needs power level %d", pl.ActionLevel("redact"))
		}
	}
	return nil
}

// jsonEqual reports whether two JSON documents are the same value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
