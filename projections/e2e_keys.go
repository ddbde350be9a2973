package projections

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/projdb"
)

// E2EKeys projects the end-to-end encryption keys that /keys/query and /sync read:
// device and cross-signing keys with the signatures uploaded apart, one-time key
// counts, unused fallback keys, and whose device list changed, numbered in log order
// (sync tokens).
type E2EKeys struct{}

// Name implements Projector.
func (E2EKeys) Name() string { return "e2e_keys" }

// Version implements Projector.
func (E2EKeys) Version() int { return 1 }

// Tables implements Projector.
func (E2EKeys) Tables() []string {
	return []string{"e2e_device_keys", "e2e_cross_signing_keys", "e2e_key_signatures", "e2e_one_time_key_counts",
		"e2e_fallback_keys", "device_list_changes"}
}

// Handles implements Projector.
func (E2EKeys) Handles(t string) bool {
	switch t {
	case eventlog.TypeDeviceKeysUploaded, eventlog.TypeOneTimeKeysUploaded, eventlog.TypeFallbackKeysUploaded, eventlog.TypeKeysClaimed,
		eventlog.TypeCrossSigningKeysUploaded, eventlog.TypeKeySignaturesUploaded, eventlog.TypeDeviceLoggedIn, eventlog.TypeDeviceRenamed,
		eventlog.TypeDeviceLoggedOut, eventlog.TypeAllDevicesLoggedOut, eventlog.TypeAccountDeactivated:
		return true
	}
	return false
}

// Apply implements Projector.
func (E2EKeys) Apply(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error {
	var b pgbatch.DB
	q := projdb.New()
	next, err := q.DeviceListChangesMaxOrdering(ctx, tx)
	if err != nil {
		return fmt.Errorf("e2e_keys: %w", err)
	}
	changed := func(user string, onlyFor *string) error {
		next++
		return q.DeviceListChangeInsert(ctx, &b, projdb.DeviceListChangeInsertParams{StreamOrdering: next, UserID: user, OnlyFor: onlyFor})
	}
	for _, e := range events {
		if err := applyE2E(ctx, &b, q, e, changed); err != nil {
			return fmt.Errorf("e2e_keys: %w", err)
		}
	}
	return b.Send(ctx, tx)
}

// applyE2E queues the statements of one event; changed records a device-list change.
func applyE2E(ctx context.Context, b *pgbatch.DB, q *projdb.Queries, e eventlog.Event, changed func(user string, onlyFor *string) error) error {
	switch e.Type {
	case eventlog.TypeDeviceKeysUploaded:
		var d eventlog.DeviceKeysUploaded
		if err := e.Decode(&d); err != nil {
			return err
		}
		if err := q.E2EDeviceKeysUpsert(ctx, b, projdb.E2EDeviceKeysUpsertParams{UserID: d.UserID, DeviceID: d.DeviceID, Keys: d.Keys}); err != nil {
			return err
		}
		return changed(d.UserID, nil)
	case eventlog.TypeOneTimeKeysUploaded:
		var d eventlog.OneTimeKeysUploaded
		if err := e.Decode(&d); err != nil {
			return err
		}
		counts := map[string]int64{}
		for keyID := range d.Keys {
			algorithm, _, _ := strings.Cut(keyID, ":")
			counts[algorithm]++
		}
		for algorithm, n := range counts {
			if err := q.E2EOneTimeKeyCountAdd(ctx, b, projdb.E2EOneTimeKeyCountAddParams{UserID: d.UserID, DeviceID: d.DeviceID, Algorithm: algorithm, N: n}); err != nil {
				return err
			}
		}
	case eventlog.TypeFallbackKeysUploaded:
		var d eventlog.FallbackKeysUploaded
		if err := e.Decode(&d); err != nil {
			return err
		}
		for keyID := range d.Keys {
			algorithm, _, _ := strings.Cut(keyID, ":")
			if err := q.E2EFallbackKeyUpsert(ctx, b, projdb.E2EFallbackKeyUpsertParams{UserID: d.UserID, DeviceID: d.DeviceID, Algorithm: algorithm}); err != nil {
				return err
			}
		}
	case eventlog.TypeKeysClaimed:
		var d eventlog.KeysClaimed
		if err := e.Decode(&d); err != nil {
			return err
		}
		for _, k := range d.Keys {
			algorithm, _, _ := strings.Cut(k.KeyID, ":")
			var err error
			if k.Fallback {
				err = q.E2EFallbackKeyUpsert(ctx, b, projdb.E2EFallbackKeyUpsertParams{UserID: k.UserID, DeviceID: k.DeviceID, Algorithm: algorithm, Used: true})
			} else {
				err = q.E2EOneTimeKeyCountAdd(ctx, b, projdb.E2EOneTimeKeyCountAddParams{UserID: k.UserID, DeviceID: k.DeviceID, Algorithm: algorithm, N: -1})
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
			if err := q.E2ECrossSigningKeyUpsert(ctx, b, projdb.E2ECrossSigningKeyUpsertParams{UserID: d.UserID, Kind: kind, Key: key}); err != nil {
				return err
			}
		}
		return changed(d.UserID, nil)
	case eventlog.TypeKeySignaturesUploaded:
		var d eventlog.KeySignaturesUploaded
		if err := e.Decode(&d); err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, s := range d.Signatures {
			if err := q.E2EKeySignatureUpsert(ctx, b, projdb.E2EKeySignatureUpsertParams{UserID: s.UserID, KeyID: s.KeyID, Signer: d.Signer,
				SignerKeyID: s.SignerKeyID, Signature: s.Signature}); err != nil {
				return err
			}
			if seen[s.UserID] {
				continue
			}
			seen[s.UserID] = true
			// Signatures of one's own keys concern everyone who shares a room; of another
			// user's master key (by one's user-signing key), only oneself.
			var onlyFor *string
			if s.UserID != d.Signer {
				onlyFor = &d.Signer
			}
			if err := changed(s.UserID, onlyFor); err != nil {
				return err
			}
		}
	case eventlog.TypeDeviceLoggedIn, eventlog.TypeDeviceRenamed:
		var d struct {
			UserID string `json:"user_id"`
		}
		if err := e.Decode(&d); err != nil {
			return err
		}
		return changed(d.UserID, nil)
	case eventlog.TypeDeviceLoggedOut:
		var d eventlog.DeviceLoggedOut
		if err := e.Decode(&d); err != nil {
			return err
		}
		if err := q.E2EDeleteDeviceKeys(ctx, b, projdb.E2EDeleteDeviceKeysParams{UserID: d.UserID, DeviceID: d.DeviceID}); err != nil {
			return err
		}
		return changed(d.UserID, nil)
	case eventlog.TypeAllDevicesLoggedOut, eventlog.TypeAccountDeactivated:
		var d struct {
			UserID string `json:"user_id"`
		}
		if err := e.Decode(&d); err != nil {
			return err
		}
		if err := q.E2EDeleteUserDeviceKeys(ctx, b, d.UserID); err != nil {
			return err
		}
		if e.Type == eventlog.TypeAccountDeactivated {
			if err := q.E2EDeleteCrossSigningKeys(ctx, b, d.UserID); err != nil {
				return err
			}
		}
		return changed(d.UserID, nil)
	}
	return nil
}
