package projections

import (
	"context"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
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
