package commands

import (
	"context"
	"strings"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/writedb"
)

// applyE2EWriteModel derives the end-to-end key rows of one event (applyWriteModel
// calls it for every event): keys uploaded and claimed, and the keys of devices that
// are gone.
func applyE2EWriteModel(ctx context.Context, b *pgbatch.DB, q *writedb.Queries, e eventlog.Event) error {
	switch e.Type {
	case eventlog.TypeDeviceKeysUploaded:
		var d eventlog.DeviceKeysUploaded
		if err := e.Decode(&d); err != nil {
			return err
		}
		return q.E2EDeviceKeysPut(ctx, b, writedb.E2EDeviceKeysPutParams{UserID: d.UserID, DeviceID: d.DeviceID, Keys: d.Keys})
	case eventlog.TypeOneTimeKeysUploaded:
		var d eventlog.OneTimeKeysUploaded
		if err := e.Decode(&d); err != nil {
			return err
		}
		for keyID, key := range d.Keys {
			algorithm, id, _ := strings.Cut(keyID, ":")
			if err := q.E2EOneTimeKeyInsert(ctx, b, writedb.E2EOneTimeKeyInsertParams{UserID: d.UserID, DeviceID: d.DeviceID,
				Algorithm: algorithm, KeyID: id, Key: key}); err != nil {
				return err
			}
		}
	case eventlog.TypeFallbackKeysUploaded:
		var d eventlog.FallbackKeysUploaded
		if err := e.Decode(&d); err != nil {
			return err
		}
		for keyID, key := range d.Keys {
			algorithm, _, _ := strings.Cut(keyID, ":")
			if err := q.E2EFallbackKeyPut(ctx, b, writedb.E2EFallbackKeyPutParams{UserID: d.UserID, DeviceID: d.DeviceID,
				Algorithm: algorithm, KeyID: keyID, Key: key}); err != nil {
				return err
			}
		}
	case eventlog.TypeKeysClaimed:
		var d eventlog.KeysClaimed
		if err := e.Decode(&d); err != nil {
			return err
		}
		for _, k := range d.Keys {
			algorithm, id, _ := strings.Cut(k.KeyID, ":")
			var err error
			if k.Fallback {
				err = q.E2EFallbackKeyUse(ctx, b, writedb.E2EFallbackKeyUseParams{UserID: k.UserID, DeviceID: k.DeviceID, Algorithm: algorithm, KeyID: k.KeyID})
			} else {
				err = q.E2EOneTimeKeyDelete(ctx, b, writedb.E2EOneTimeKeyDeleteParams{UserID: k.UserID, DeviceID: k.DeviceID, Algorithm: algorithm, KeyID: id})
			}
			if err != nil {
				return err
			}
		}
	case eventlog.TypeCrossSigningKeysUploaded:
		var d eventlog.CrossSigningKeysUploaded
		if err := e.Decode(&d); err != nil {
			return err
		}
		for kind, key := range d.ByKind() {
			if err := q.E2ECrossSigningKeyPut(ctx, b, writedb.E2ECrossSigningKeyPutParams{UserID: d.UserID, Kind: kind, Key: key}); err != nil {
				return err
			}
		}
	case eventlog.TypeDeviceLoggedOut:
		var d eventlog.DeviceLoggedOut
		if err := e.Decode(&d); err != nil {
			return err
		}
		return q.E2EDeleteDevice(ctx, b, writedb.E2EDeleteDeviceParams{UserID: d.UserID, DeviceID: d.DeviceID})
	case eventlog.TypeAllDevicesLoggedOut:
		var d eventlog.AllDevicesLoggedOut
		if err := e.Decode(&d); err != nil {
			return err
		}
		return q.E2EDeleteUserDevices(ctx, b, d.UserID)
	case eventlog.TypeAccountDeactivated:
		var d eventlog.AccountDeactivated
		if err := e.Decode(&d); err != nil {
			return err
		}
		if err := q.E2EDeleteUserDevices(ctx, b, d.UserID); err != nil {
			return err
		}
		return q.E2ECrossSigningKeysDelete(ctx, b, d.UserID)
	}
	return nil
}
