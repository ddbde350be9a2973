package projections

import (
	"context"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/projdb"
)

// Filters projects the filters users uploaded (GET /user/{userId}/filter/{filterId}, and
// /sync's filter parameter).
type Filters struct{}

// Name implements Projector.
func (Filters) Name() string { return "filters" }

// Version implements Projector.
func (Filters) Version() int { return 1 }

// Tables implements Projector.
func (Filters) Tables() []string { return []string{"user_filters"} }

// Handles implements Projector.
func (Filters) Handles(t string) bool { return t == eventlog.TypeFilterCreated }

// Apply implements Projector.
func (Filters) Apply(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error {
	q := projdb.New()
	return applyEach(ctx, tx, "filters", events, func(b *pgbatch.DB, _ eventlog.Event, d eventlog.FilterCreated) error {
		return q.UserFilterInsert(ctx, b, projdb.UserFilterInsertParams{UserID: d.UserID, FilterID: d.FilterID, Filter: d.Filter})
	})
}
