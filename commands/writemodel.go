package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/writedb"
)

// writeModelTables are emptied before a rebuild.
var writeModelTables = []string{
	"writemodel.users", "writemodel.devices", "writemodel.uia_sessions", "writemodel.registration_tokens",
	"writemodel.refresh_tokens", "writemodel.login_tokens", "writemodel.threepid_sessions", "writemodel.user_threepids",
	"writemodel.sso_logins", "writemodel.sso_identities", "writemodel.e2e_device_keys", "writemodel.e2e_one_time_keys",
	"writemodel.e2e_fallback_keys", "writemodel.e2e_cross_signing_keys", "writemodel.profiles",
	"writemodel.threepid_bindings",
}

// applyWriteModel derives the write model's rows from events. Commands call it in the
// append transaction; RebuildWriteModel calls it over the whole log. Like a projector it
// must depend on the events alone.
func applyWriteModel(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error {
	var b pgbatch.DB
	if err := queueWriteModel(ctx, &b, events, nil); err != nil {
		return err
	}
	return b.Send(ctx, tx)
}

// queueWriteModel queues the write-model statements of events in b. news, if not nil,
// are what events were appended from, in the same order: a room event built by the
// command is there parsed already (acceptedEvent), and is not decoded again.
func queueWriteModel(ctx context.Context, b *pgbatch.DB, events []eventlog.Event, news []eventlog.NewEvent) error {
	q := writedb.New()
	for i, e := range events {
		if news != nil {
			if a, ok := news[i].Data.(acceptedEvent); ok {
				if err := applyRoomEvent(ctx, b, q, a.RoomEventAccepted, a.ev); err != nil {
					return fmt.Errorf("write model: %w", err)
				}
				continue
			}
		}
		var err error
		switch e.Type {
		case eventlog.TypeAccountRegistered:
			var d eventlog.AccountRegistered
			if err = e.Decode(&d); err == nil {
				var hash *string
				if d.PasswordHash != "" {
					hash = &d.PasswordHash
				}
				err = q.UserInsert(ctx, b, writedb.UserInsertParams{
					UserID: d.UserID, Localpart: d.Localpart, PasswordHash: hash, IsGuest: d.Guest, IsAdmin: d.Admin,
				})
			}
		case eventlog.TypeDeviceLoggedIn:
			var d eventlog.DeviceLoggedIn
			if err = e.Decode(&d); err == nil {
				err = q.DeviceInsert(ctx, b, writedb.DeviceInsertParams{UserID: d.UserID, DeviceID: d.DeviceID})
			}
			if err == nil && d.RefreshTokenHash != nil {
				err = q.RefreshTokenInsert(ctx, b, writedb.RefreshTokenInsertParams{TokenHash: d.RefreshTokenHash, UserID: d.UserID, DeviceID: d.DeviceID})
			}
		case eventlog.TypeTokensRefreshed:
			var d eventlog.TokensRefreshed
			if err = e.Decode(&d); err == nil {
				err = q.RefreshTokenDelete(ctx, b, d.UsedRefreshHash)
			}
			if err == nil {
				err = q.RefreshTokenInsert(ctx, b, writedb.RefreshTokenInsertParams{TokenHash: d.RefreshTokenHash, UserID: d.UserID, DeviceID: d.DeviceID})
			}
		case eventlog.TypeDeviceLoggedOut:
			var d eventlog.DeviceLoggedOut
			if err = e.Decode(&d); err == nil {
				err = q.DeviceDelete(ctx, b, writedb.DeviceDeleteParams{UserID: d.UserID, DeviceID: d.DeviceID})
			}
			if err == nil {
				err = q.RefreshTokenDeleteByDevice(ctx, b, writedb.RefreshTokenDeleteByDeviceParams{UserID: d.UserID, DeviceID: d.DeviceID})
			}
		case eventlog.TypeAllDevicesLoggedOut:
			var d eventlog.AllDevicesLoggedOut
			if err = e.Decode(&d); err == nil {
				err = q.DeviceDeleteAllByUser(ctx, b, d.UserID)
			}
			if err == nil {
				err = q.RefreshTokenDeleteByUser(ctx, b, d.UserID)
			}
		case eventlog.TypeTokensRefreshedV2:
			var d eventlog.TokensRefreshedV2
			if err = e.Decode(&d); err == nil {
				for _, h := range d.Revoke {
					if err = q.RefreshTokenDelete(ctx, b, h); err != nil {
						break
					}
				}
			}
			if err == nil {
				err = q.RefreshTokenSetNext(ctx, b, writedb.RefreshTokenSetNextParams{TokenHash: d.UsedRefreshHash, NextHash: d.RefreshTokenHash})
			}
			if err == nil {
				err = q.RefreshTokenInsert(ctx, b, writedb.RefreshTokenInsertParams{TokenHash: d.RefreshTokenHash, UserID: d.UserID, DeviceID: d.DeviceID})
			}
		case eventlog.TypeRefreshTokenRetired:
			var d eventlog.RefreshTokenRetired
			if err = e.Decode(&d); err == nil {
				err = q.RefreshTokenDelete(ctx, b, d.RefreshHash)
			}
		case eventlog.TypeDeviceTokensRevoked:
			var d eventlog.DeviceTokensRevoked
			if err = e.Decode(&d); err == nil {
				err = q.RefreshTokenDeleteByDevice(ctx, b, writedb.RefreshTokenDeleteByDeviceParams{UserID: d.UserID, DeviceID: d.DeviceID})
			}
		case eventlog.TypeGuestUpgraded:
			var d eventlog.GuestUpgraded
			if err = e.Decode(&d); err == nil {
				var hash *string
				if d.PasswordHash != "" {
					hash = &d.PasswordHash
				}
				err = q.UserUpgradeGuest(ctx, b, writedb.UserUpgradeGuestParams{UserID: d.UserID, PasswordHash: hash})
			}
		case eventlog.TypePasswordChanged:
			var d eventlog.PasswordChanged
			if err = e.Decode(&d); err == nil {
				err = q.UserSetPassword(ctx, b, writedb.UserSetPasswordParams{UserID: d.UserID, PasswordHash: &d.PasswordHash})
			}
		case eventlog.TypeAccountDeactivated:
			var d eventlog.AccountDeactivated
			if err = e.Decode(&d); err == nil {
				err = q.UserDeactivate(ctx, b, d.UserID)
			}
			if err == nil {
				err = q.DeviceDeleteAllByUser(ctx, b, d.UserID)
			}
			if err == nil {
				err = q.RefreshTokenDeleteByUser(ctx, b, d.UserID)
			}
		case eventlog.TypeLoginTokenIssued:
			var d eventlog.LoginTokenIssued
			if err = e.Decode(&d); err == nil {
				err = q.LoginTokenInsert(ctx, b, writedb.LoginTokenInsertParams{TokenHash: d.TokenHash, UserID: d.UserID, ExpiresAt: d.ExpiresAt})
			}
		case eventlog.TypeLoginTokenUsed:
			var d eventlog.LoginTokenUsed
			if err = e.Decode(&d); err == nil {
				err = q.LoginTokenUse(ctx, b, d.TokenHash)
			}
		case eventlog.TypeUIASessionStarted:
			var d eventlog.UIASessionStarted
			if err = e.Decode(&d); err == nil {
				var user *string
				if d.UserID != "" {
					user = &d.UserID
				}
				err = q.UIASessionInsert(ctx, b, writedb.UIASessionInsertParams{Session: d.Session, Kind: d.Kind, UserID: user, Operation: d.Operation, CreatedAt: e.RecordedAt})
			}
		case eventlog.TypeUIAStageCompleted:
			var d eventlog.UIAStageCompleted
			if err = e.Decode(&d); err == nil {
				err = q.UIASessionCompleteStage(ctx, b, writedb.UIASessionCompleteStageParams{Session: d.Session, Stage: d.Stage})
			}
		case eventlog.TypeRegistrationTokenCreated:
			var d eventlog.RegistrationTokenCreated
			if err = e.Decode(&d); err == nil {
				err = q.RegistrationTokenInsert(ctx, b, writedb.RegistrationTokenInsertParams{
					Token: d.Token, UsesAllowed: d.UsesAllowed, ExpiryTime: d.ExpiryTime,
				})
			}
		case eventlog.TypeRegistrationTokenUsed:
			var d eventlog.RegistrationTokenUsed
			if err = e.Decode(&d); err == nil {
				err = q.RegistrationTokenComplete(ctx, b, d.Token)
			}
		case eventlog.TypeRegistrationTokenUpdated:
			var d eventlog.RegistrationTokenUpdated
			if err = e.Decode(&d); err == nil {
				err = q.RegistrationTokenUpdate(ctx, b, writedb.RegistrationTokenUpdateParams{
					Token: d.Token, UsesAllowed: d.UsesAllowed, ExpiryTime: d.ExpiryTime,
				})
			}
		case eventlog.TypeRegistrationTokenRevoked:
			var d eventlog.RegistrationTokenRevoked
			if err = e.Decode(&d); err == nil {
				err = q.RegistrationTokenRevoke(ctx, b, d.Token)
			}
		}
		if err == nil {
			err = applyThreepidWriteModel(ctx, b, q, e)
		}
		if err == nil {
			err = applySSOWriteModel(ctx, b, q, e)
		}
		if err == nil {
			err = applyRoomWriteModel(ctx, b, q, e)
		}
		if err == nil {
			err = applyE2EWriteModel(ctx, b, q, e)
		}
		if err == nil {
			err = applyProfileWriteModel(ctx, b, q, e)
		}
		if err != nil {
			return fmt.Errorf("write model: %w", err)
		}
	}
	return nil
}

// RebuildWriteModel empties the write model and derives it again from the whole log, in
// one transaction. The caller makes sure no command runs meanwhile (spelt replay refuses
// while a server holds the writer lock). progress, if not nil, gets each batch's size.
func RebuildWriteModel(ctx context.Context, pool *pgxpool.Pool, progress func(n int)) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, t := range writeModelTables {
			if _, err := tx.Exec(ctx, "TRUNCATE "+t); err != nil {
				return fmt.Errorf("rebuild write model: %w", err)
			}
		}
		// Read up to the last event committed now; a read can come back short while a
		// transaction still running anywhere in the cluster holds the readers back.
		target, err := eventlog.Last(ctx, tx, eventlog.Bound{})
		if err != nil {
			return err
		}
		var after eventlog.Position
		for after.Less(target) {
			events, err := eventlog.Read(ctx, tx, after, 5000, eventlog.Bound{})
			if err != nil {
				return err
			}
			if len(events) == 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(2 * time.Millisecond):
				}
				continue
			}
			if err := applyWriteModel(ctx, tx, events); err != nil {
				return err
			}
			after = events[len(events)-1].Position
			if progress != nil {
				progress(len(events))
			}
		}
		return nil
	})
}

// writerLock is the advisory lock every serving process holds shared and a write-model
// rebuild takes exclusively.
const writerLock = 0x5e1_7001

// HoldWriterLock takes the shared writer lock on a dedicated connection and keeps it
// until ctx ends; a write-model rebuild cannot start meanwhile.
func HoldWriterLock(ctx context.Context, pool *pgxpool.Pool) (release func(), err error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	conn := c.Hijack()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock_shared($1)", writerLock); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("writer lock: %w", err)
	}
	return func() { conn.Close(context.Background()) }, nil
}

// TryExclusiveWriterLock takes the writer lock exclusively, failing at once when a
// server holds it; release frees it.
func TryExclusiveWriterLock(ctx context.Context, pool *pgxpool.Pool) (release func(), err error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	conn := c.Hijack()
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", writerLock).Scan(&ok); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	if !ok {
		conn.Close(context.Background())
		return nil, fmt.Errorf("a server is running against this database: stop spelt serve before rebuilding the write model")
	}
	return func() { conn.Close(context.Background()) }, nil
}
