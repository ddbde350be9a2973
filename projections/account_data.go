package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/projdb"
)

// AccountData projects users' account data and room tags.
type AccountData struct{}

// Name implements Projector.
func (AccountData) Name() string { return "account_data" }

// Version implements Projector.
func (AccountData) Version() int { return 1 }

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
	for _, e := range events {
		var err error
		switch e.Type {
		case eventlog.TypeAccountDataSet:
			var d eventlog.AccountDataSet
			if err = e.Decode(&d); err == nil {
				err = q.AccountDataUpsert(ctx, &b, projdb.AccountDataUpsertParams{UserID: d.UserID, RoomID: d.RoomID, Type: d.Type, Content: d.Content})
			}
		case eventlog.TypeRoomTagSet:
			var d eventlog.RoomTagSet
			if err = e.Decode(&d); err == nil {
				err = q.RoomTagUpsert(ctx, &b, projdb.RoomTagUpsertParams{UserID: d.UserID, RoomID: d.RoomID, Tag: d.Tag, Content: d.Content})
			}
		case eventlog.TypeRoomTagRemoved:
			var d eventlog.RoomTagRemoved
			if err = e.Decode(&d); err == nil {
				err = q.RoomTagDelete(ctx, &b, projdb.RoomTagDeleteParams{UserID: d.UserID, RoomID: d.RoomID, Tag: d.Tag})
			}
		}
		if err != nil {
			return fmt.Errorf("account data: %w", err)
		}
	}
	return b.Send(ctx, tx)
}
