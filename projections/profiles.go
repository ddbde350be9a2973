package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/projdb"
)

// Profiles projects users' display names and avatars: a new account's display name is
// its localpart (guests have none), and deactivation clears the profile.
type Profiles struct{}

// Name implements Projector.
func (Profiles) Name() string { return "profiles" }

// Version implements Projector.
func (Profiles) Version() int { return 1 }

// Tables implements Projector.
func (Profiles) Tables() []string { return []string{"profiles"} }

// Handles implements Projector.
func (Profiles) Handles(t string) bool {
	return t == eventlog.TypeAccountRegistered || t == eventlog.TypeProfileChanged || t == eventlog.TypeAccountDeactivated
}

// Apply implements Projector.
func (Profiles) Apply(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error {
	var b pgbatch.DB
	q := projdb.New()
	for _, e := range events {
		var err error
		switch e.Type {
		case eventlog.TypeAccountRegistered:
			var d eventlog.AccountRegistered
			if err = e.Decode(&d); err == nil {
				var name *string
				if !d.Guest {
					name = &d.Localpart
				}
				err = q.ProfileInsert(ctx, &b, projdb.ProfileInsertParams{UserID: d.UserID, Displayname: name})
			}
		case eventlog.TypeProfileChanged:
			var d eventlog.ProfileChanged
			if err = e.Decode(&d); err == nil {
				if d.Field == "avatar_url" {
					err = q.ProfileSetAvatarURL(ctx, &b, projdb.ProfileSetAvatarURLParams{UserID: d.UserID, AvatarUrl: d.Value})
				} else {
					err = q.ProfileSetDisplayname(ctx, &b, projdb.ProfileSetDisplaynameParams{UserID: d.UserID, Displayname: d.Value})
				}
			}
		case eventlog.TypeAccountDeactivated:
			var d eventlog.AccountDeactivated
			if err = e.Decode(&d); err == nil {
				err = q.ProfileClear(ctx, &b, d.UserID)
			}
		}
		if err != nil {
			return fmt.Errorf("profiles: %w", err)
		}
	}
	return b.Send(ctx, tx)
}
