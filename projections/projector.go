package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
)

// Projector builds one read model from the log.
//
// Apply must be deterministic: the same events always produce the same rows, with no
// wall clock, randomness or network (use an event's RecordedAt for times). It is called
// with a batch of events in log order, in the transaction that also moves the
// projector's checkpoint; live delivery is a batch of one.
type Projector interface {
	// Name is the projector's stable name: its consumer group and checkpoint key.
	// Renaming it means a full rebuild.
	Name() string
	// Version changes whenever Apply or the tables change shape; a projector whose
	// stored version differs is rebuilt from the start.
	Version() int
	// Tables lists the read-model tables only this projector writes; a rebuild empties
	// them.
	Tables() []string
	// Handles reports whether Apply needs events of this type; others only move the
	// checkpoint.
	Handles(eventType string) bool
	Apply(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error
}

// applyEach is Apply for a projector of one event type: it decodes every event as a
// D and hands it to write, whose statements go to PostgreSQL in one batch. name
// prefixes errors.
func applyEach[D any](ctx context.Context, tx pgx.Tx, name string, events []eventlog.Event, write func(b *pgbatch.DB, e eventlog.Event, d D) error) error {
	var b pgbatch.DB
	for _, e := range events {
		var d D
		if err := e.Decode(&d); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := write(&b, e, d); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return b.Send(ctx, tx)
}
