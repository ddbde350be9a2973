package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/projdb"
)

// Accounts projects accounts, their devices and their access tokens (hashes only).
type Accounts struct{}

// Name implements Projector.
func (Accounts) Name() string { return "accounts" }

// Version implements Projector.
func (Accounts) Version() int { return 1 }

// Tables implements Projector.
func (Accounts) Tables() []string { return []string{"accounts", "devices", "access_tokens"} }

// Handles implements Projector.
func (Accounts) Handles(t string) bool {
	switch t {
	case eventlog.TypeAccountRegistered, eventlog.TypeDeviceLoggedIn,
		eventlog.TypeDeviceLoggedOut, eventlog.TypeAllDevicesLoggedOut:
		return true
	}
	return false
}

// Apply implements Projector.
func (Accounts) Apply(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error {
	var b pgbatch.DB
	q := projdb.New()
	for _, e := range events {
		var err error
		switch e.Type {
		case eventlog.TypeAccountRegistered:
			var d eventlog.AccountRegistered
			if err = e.Decode(&d); err == nil {
				err = q.AccountInsert(ctx, &b, projdb.AccountInsertParams{
					UserID: d.UserID, Localpart: d.Localpart, IsGuest: d.Guest, IsAdmin: d.Admin, CreatedAt: e.RecordedAt,
				})
			}
		case eventlog.TypeDeviceLoggedIn:
			var d eventlog.DeviceLoggedIn
			if err = e.Decode(&d); err == nil {
				err = q.DeviceUpsert(ctx, &b, projdb.DeviceUpsertParams{
					UserID: d.UserID, DeviceID: d.DeviceID, DisplayName: d.DisplayName, CreatedAt: e.RecordedAt,
				})
			}
			if err == nil {
				err = q.AccessTokenInsert(ctx, &b, projdb.AccessTokenInsertParams{
					TokenHash: d.TokenHash, UserID: d.UserID, DeviceID: d.DeviceID, CreatedAt: e.RecordedAt, ExpiresAt: d.ExpiresAt,
				})
			}
		case eventlog.TypeDeviceLoggedOut:
			var d eventlog.DeviceLoggedOut
			if err = e.Decode(&d); err == nil {
				err = q.DeviceDeleteOne(ctx, &b, projdb.DeviceDeleteOneParams{UserID: d.UserID, DeviceID: d.DeviceID})
			}
			if err == nil {
				err = q.AccessTokenDeleteByDevice(ctx, &b, projdb.AccessTokenDeleteByDeviceParams{UserID: d.UserID, DeviceID: d.DeviceID})
			}
		case eventlog.TypeAllDevicesLoggedOut:
			var d eventlog.AllDevicesLoggedOut
			if err = e.Decode(&d); err == nil {
				err = q.DeviceDeleteByUser(ctx, &b, d.UserID)
			}
			if err == nil {
				err = q.AccessTokenDeleteByUser(ctx, &b, d.UserID)
			}
		}
		if err != nil {
			return fmt.Errorf("accounts: %w", err)
		}
	}
	return b.Send(ctx, tx)
}

// RegistrationTokens projects registration tokens and their use counts.
type RegistrationTokens struct{}

// Name implements Projector.
func (RegistrationTokens) Name() string { return "registration_tokens" }

// Version implements Projector.
func (RegistrationTokens) Version() int { return 1 }

// Tables implements Projector.
func (RegistrationTokens) Tables() []string { return []string{"registration_tokens"} }

// Handles implements Projector.
func (RegistrationTokens) Handles(t string) bool {
	switch t {
	case eventlog.TypeRegistrationTokenCreated, eventlog.TypeRegistrationTokenUsed, eventlog.TypeRegistrationTokenRevoked:
		return true
	}
	return false
}

// Apply implements Projector.
func (RegistrationTokens) Apply(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error {
	var b pgbatch.DB
	q := projdb.New()
	for _, e := range events {
		var err error
		switch e.Type {
		case eventlog.TypeRegistrationTokenCreated:
			var d eventlog.RegistrationTokenCreated
			if err = e.Decode(&d); err == nil {
				err = q.RegistrationTokenCreate(ctx, &b, projdb.RegistrationTokenCreateParams{
					Token: d.Token, UsesAllowed: d.UsesAllowed, ExpiryTime: d.ExpiryTime,
				})
			}
		case eventlog.TypeRegistrationTokenUsed:
			var d eventlog.RegistrationTokenUsed
			if err = e.Decode(&d); err == nil {
				err = q.RegistrationTokenCompleted(ctx, &b, d.Token)
			}
		case eventlog.TypeRegistrationTokenRevoked:
			var d eventlog.RegistrationTokenRevoked
			if err = e.Decode(&d); err == nil {
				err = q.RegistrationTokenRevoked(ctx, &b, d.Token)
			}
		}
		if err != nil {
			return fmt.Errorf("registration tokens: %w", err)
		}
	}
	return b.Send(ctx, tx)
}

// All returns every projector Spelt runs.
func All() []Projector {
	return []Projector{Accounts{}, RegistrationTokens{}}
}
