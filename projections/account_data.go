package projections

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/projdb"
)

// AccountData projects users' account data and room tags. A room's tags are also kept
// as its m.tag room account data, which /sync gives clients. Each change gets the next
// stream ordering (in log order: a replay gives the same numbers).
type AccountData struct{}

// Name implements Projector.
func (AccountData) Name() string { return "account_data" }

// Version implements Projector.
func (AccountData) Version() int { return 2 }

// Tables implements Projector.
func (AccountData) Tables() []string { return []string{"account_data", "room_tags"} }

// Handles implements Projector.
func (AccountData) Handles(t string) bool {
	return t == eventlog.TypeAccountDataSet || t == eventlog.TypeRoomTagSet || t == eventlog.TypeRoomTagRemoved
}

// Apply implements Projector.
func (AccountData) Apply(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error {
	var b pgbatch.DB
	q := projdb.New()
	next, err := q.AccountDataMaxOrdering(ctx, tx)
	if err != nil {
		return fmt.Errorf("account data: %w", err)
	}
	// A room's tags as this batch leaves them, by user and room.
	tags := map[[2]string]map[string]json.RawMessage{}
	tagsOf := func(user, room string) (map[string]json.RawMessage, error) {
		k := [2]string{user, room}
		if t, ok := tags[k]; ok {
			return t, nil
		}
		rows, err := q.RoomTagsOf(ctx, tx, projdb.RoomTagsOfParams{UserID: user, RoomID: room})
		if err != nil {
			return nil, err
		}
		t := map[string]json.RawMessage{}
		for _, r := range rows {
			t[r.Tag] = json.RawMessage(r.Content)
		}
		tags[k] = t
		return t, nil
	}
	setTags := func(user, room string, t map[string]json.RawMessage) error {
		content, err := json.Marshal(map[string]any{"tags": t})
		if err != nil {
			return err
		}
		next++
		return q.AccountDataUpsert(ctx, &b, projdb.AccountDataUpsertParams{UserID: user, RoomID: room, Type: "m.tag", Content: content, StreamOrdering: next})
	}
	for _, e := range events {
		var err error
		switch e.Type {
		case eventlog.TypeAccountDataSet:
			var d eventlog.AccountDataSet
			if err = e.Decode(&d); err == nil {
				next++
				err = q.AccountDataUpsert(ctx, &b, projdb.AccountDataUpsertParams{UserID: d.UserID, RoomID: d.RoomID, Type: d.Type, Content: d.Content, StreamOrdering: next})
			}
		case eventlog.TypeRoomTagSet:
			var d eventlog.RoomTagSet
			if err = e.Decode(&d); err == nil {
				err = q.RoomTagUpsert(ctx, &b, projdb.RoomTagUpsertParams{UserID: d.UserID, RoomID: d.RoomID, Tag: d.Tag, Content: d.Content})
			}
			var t map[string]json.RawMessage
			if err == nil {
				t, err = tagsOf(d.UserID, d.RoomID)
			}
			if err == nil {
				t[d.Tag] = d.Content
				err = setTags(d.UserID, d.RoomID, t)
			}
		case eventlog.TypeRoomTagRemoved:
			var d eventlog.RoomTagRemoved
			if err = e.Decode(&d); err == nil {
				err = q.RoomTagDelete(ctx, &b, projdb.RoomTagDeleteParams{UserID: d.UserID, RoomID: d.RoomID, Tag: d.Tag})
			}
			var t map[string]json.RawMessage
			if err == nil {
				t, err = tagsOf(d.UserID, d.RoomID)
			}
			if err == nil {
				delete(t, d.Tag)
				err = setTags(d.UserID, d.RoomID, t)
			}
		}
		if err != nil {
			return fmt.Errorf("account data: %w", err)
		}
	}
	return b.Send(ctx, tx)
}
