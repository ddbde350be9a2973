package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/projdb"
)

// Presence projects each user's last presence; the time it was set is the event's
// recorded time.
type Presence struct{}

// Name implements Projector.
func (Presence) Name() string { return "presence" }

// Version implements Projector.
func (Presence) Version() int { return 2 }

// Tables implements Projector.
func (Presence) Tables() []string { return []string{"user_presence"} }

// Handles implements Projector.
func (Presence) Handles(t string) bool { return t == eventlog.TypePresenceSet }

// Apply implements Projector.
func (Presence) Apply(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error {
	q := projdb.New()
	next, err := q.PresenceMaxOrdering(ctx, tx)
	if err != nil {
		return fmt.Errorf("presence: %w", err)
	}
	return applyEach(ctx, tx, "presence", events, func(b *pgbatch.DB, e eventlog.Event, d eventlog.PresenceSet) error {
		next++
		return q.PresenceUpsert(ctx, b, projdb.PresenceUpsertParams{UserID: d.UserID, Presence: d.Presence, StatusMsg: d.StatusMsg, UpdatedAt: e.RecordedAt, StreamOrdering: next})
	})
}
