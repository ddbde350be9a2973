package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/projdb"
)

// Receipts projects each user's latest receipt of each type and thread in each room,
// numbered in log order (sync tokens).
type Receipts struct{}

// Name implements Projector.
func (Receipts) Name() string { return "receipts" }

// Version implements Projector.
func (Receipts) Version() int { return 1 }

// Tables implements Projector.
func (Receipts) Tables() []string { return []string{"receipts"} }

// Handles implements Projector.
func (Receipts) Handles(t string) bool { return t == eventlog.TypeReceiptSent }

// Apply implements Projector.
func (Receipts) Apply(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error {
	q := projdb.New()
	next, err := q.ReceiptsMaxOrdering(ctx, tx)
	if err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	return applyEach(ctx, tx, "receipts", events, func(b *pgbatch.DB, _ eventlog.Event, d eventlog.ReceiptSent) error {
		next++
		return q.ReceiptUpsert(ctx, b, projdb.ReceiptUpsertParams{RoomID: d.RoomID, UserID: d.UserID, ReceiptType: d.Type,
			ThreadID: d.ThreadID, EventID: d.EventID, Ts: d.TS, StreamOrdering: next})
	})
}
