package commands

import (
	"context"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/writedb"
)

// applyThreepidWriteModel derives the 3PID write-model rows of one event (applyWriteModel
// calls it for every event). Like the rest of the write model it depends on the events
// alone: times come from the events.
func applyThreepidWriteModel(ctx context.Context, b *pgbatch.DB, q *writedb.Queries, e eventlog.Event) error {
	switch e.Type {
	case eventlog.TypeThreepidValidationRequested:
		var d eventlog.ThreepidValidationRequested
		if err := e.Decode(&d); err != nil {
			return err
		}
		var next *string
		if d.NextLink != "" {
			next = &d.NextLink
		}
		return q.ThreepidSessionUpsert(ctx, b, writedb.ThreepidSessionUpsertParams{
			Sid: d.SID, ClientSecretHash: d.ClientSecretHash, Medium: d.Medium, Address: d.Address, Purpose: d.Purpose,
			TokenHash: d.TokenHash, SendAttempt: d.SendAttempt, NextLink: next, ExpiresAt: d.ExpiresAt,
		})
	case eventlog.TypeThreepidValidated:
		var d eventlog.ThreepidValidated
		if err := e.Decode(&d); err != nil {
			return err
		}
		at := e.RecordedAt
		return q.ThreepidSessionValidate(ctx, b, writedb.ThreepidSessionValidateParams{Sid: d.SID, ValidatedAt: &at})
	case eventlog.TypeThreepidSessionUsed:
		var d eventlog.ThreepidSessionUsed
		if err := e.Decode(&d); err != nil {
			return err
		}
		return q.ThreepidSessionUse(ctx, b, writedb.ThreepidSessionUseParams{Sid: d.SID, UsedByUia: &d.UIASession})
	case eventlog.TypeThreepidAdded:
		var d eventlog.ThreepidAdded
		if err := e.Decode(&d); err != nil {
			return err
		}
		return q.UserThreepidInsert(ctx, b, writedb.UserThreepidInsertParams{
			Medium: d.Medium, Address: d.Address, UserID: d.UserID, ValidatedAt: d.ValidatedAt,
		})
	case eventlog.TypeThreepidBound, eventlog.TypeThreepidUnbound:
		var d eventlog.ThreepidBinding
		if err := e.Decode(&d); err != nil {
			return err
		}
		if e.Type == eventlog.TypeThreepidBound {
			return q.ThreepidBindingInsert(ctx, b, writedb.ThreepidBindingInsertParams(d))
		}
		return q.ThreepidBindingDelete(ctx, b, writedb.ThreepidBindingDeleteParams(d))
	case eventlog.TypeThreepidRemoved:
		var d eventlog.ThreepidRemoved
		if err := e.Decode(&d); err != nil {
			return err
		}
		return q.UserThreepidDelete(ctx, b, writedb.UserThreepidDeleteParams{Medium: d.Medium, Address: d.Address, UserID: d.UserID})
	case eventlog.TypeAccountDeactivated:
		// A deactivated account gives its 3PIDs up: they can be added to another account,
		// and log in or reset nothing.
		var d eventlog.AccountDeactivated
		if err := e.Decode(&d); err != nil {
			return err
		}
		return q.UserThreepidDeleteByUser(ctx, b, d.UserID)
	}
	return nil
}
