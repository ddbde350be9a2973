package commands

import (
	"context"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/writedb"
)

// applyProfileWriteModel derives the profile rows of one event (applyWriteModel calls it
// for every event): a new account's display name is its localpart (guests have none),
// and deactivation clears the profile, as Synapse does.
func applyProfileWriteModel(ctx context.Context, b *pgbatch.DB, q *writedb.Queries, e eventlog.Event) error {
	switch e.Type {
	case eventlog.TypeAccountRegistered:
		var d eventlog.AccountRegistered
		if err := e.Decode(&d); err != nil {
			return err
		}
		var name *string
		if !d.Guest {
			name = &d.Localpart
		}
		return q.ProfileInsert(ctx, b, writedb.ProfileInsertParams{UserID: d.UserID, Displayname: name})
	case eventlog.TypeProfileChanged:
		var d eventlog.ProfileChanged
		if err := e.Decode(&d); err != nil {
			return err
		}
		if d.Field == "avatar_url" {
			return q.ProfileSetAvatarURL(ctx, b, writedb.ProfileSetAvatarURLParams{UserID: d.UserID, AvatarUrl: d.Value})
		}
		return q.ProfileSetDisplayname(ctx, b, writedb.ProfileSetDisplaynameParams{UserID: d.UserID, Displayname: d.Value})
	case eventlog.TypeAccountDeactivated:
		var d eventlog.AccountDeactivated
		if err := e.Decode(&d); err != nil {
			return err
		}
		return q.ProfileClear(ctx, b, d.UserID)
	}
	return nil
}
