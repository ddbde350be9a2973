package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/projdb"
)

// Threepids projects the third-party identifiers (3PIDs) of accounts, for GET
// /account/3pid. A deactivated account loses its 3PIDs.
type Threepids struct{}

// Name implements Projector.
func (Threepids) Name() string { return "threepids" }

// Version implements Projector.
func (Threepids) Version() int { return 1 }

// Tables implements Projector.
func (Threepids) Tables() []string { return []string{"user_threepids"} }

// Handles implements Projector.
func (Threepids) Handles(t string) bool {
	switch t {
	case eventlog.TypeThreepidAdded, eventlog.TypeThreepidRemoved, eventlog.TypeAccountDeactivated:
		return true
	}
	return false
}

// Apply implements Projector. 3PID events are few (people add an address or two), so
// they are applied one by one, in one round trip per batch. The added time is the
// event's recorded time.
func (Threepids) Apply(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error {
	var b pgbatch.DB
	q := projdb.New()
	for _, e := range events {
		var err error
		switch e.Type {
		case eventlog.TypeThreepidAdded:
			var d eventlog.ThreepidAdded
			if err = e.Decode(&d); err == nil {
				err = q.UserThreepidUpsert(ctx, &b, projdb.UserThreepidUpsertParams{
					Medium: d.Medium, Address: d.Address, UserID: d.UserID, ValidatedAt: d.ValidatedAt, AddedAt: e.RecordedAt,
				})
			}
		case eventlog.TypeThreepidRemoved:
			var d eventlog.ThreepidRemoved
			if err = e.Decode(&d); err == nil {
				err = q.UserThreepidRemove(ctx, &b, projdb.UserThreepidRemoveParams{Medium: d.Medium, Address: d.Address, UserID: d.UserID})
			}
		case eventlog.TypeAccountDeactivated:
			var d eventlog.AccountDeactivated
			if err = e.Decode(&d); err == nil {
				err = q.UserThreepidRemoveByUser(ctx, &b, d.UserID)
			}
		}
		if err != nil {
			return fmt.Errorf("threepids: %w", err)
		}
	}
	return b.Send(ctx, tx)
}
