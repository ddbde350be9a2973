package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/projdb"
)

// ToDevice projects each device's inbox of to-device messages, numbered in log order
// (sync tokens); acknowledged messages go, and so do the inboxes of deleted devices.
type ToDevice struct{}

// Name implements Projector.
func (ToDevice) Name() string { return "to_device" }

// Version implements Projector.
func (ToDevice) Version() int { return 2 }

// Tables implements Projector.
func (ToDevice) Tables() []string { return []string{"device_inbox", "device_inbox_position"} }

// Handles implements Projector.
func (ToDevice) Handles(t string) bool {
	switch t {
	case eventlog.TypeToDeviceSent, eventlog.TypeToDeviceAcknowledged, eventlog.TypeDeviceLoggedOut,
		eventlog.TypeAllDevicesLoggedOut, eventlog.TypeAccountDeactivated:
		return true
	}
	return false
}

// Apply implements Projector.
func (ToDevice) Apply(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error {
	var b pgbatch.DB
	q := projdb.New()
	pos, err := q.DeviceInboxPosition(ctx, tx)
	if err != nil {
		return fmt.Errorf("to_device: %w", err)
	}
	start := pos
	for _, e := range events {
		switch e.Type {
		case eventlog.TypeToDeviceSent:
			var d eventlog.ToDeviceSent
			if err := e.Decode(&d); err != nil {
				return fmt.Errorf("to_device: %w", err)
			}
			for _, m := range d.Messages {
				pos++
				if err := q.DeviceInboxInsert(ctx, &b, projdb.DeviceInboxInsertParams{UserID: m.UserID, DeviceID: m.DeviceID, StreamOrdering: pos,
					Sender: d.Sender, Type: d.Type, Content: m.Content}); err != nil {
					return fmt.Errorf("to_device: %w", err)
				}
			}
		case eventlog.TypeDeviceLoggedOut:
			var d eventlog.DeviceLoggedOut
			if err := e.Decode(&d); err != nil {
				return fmt.Errorf("to_device: %w", err)
			}
			if err := q.DeviceInboxDeleteDevice(ctx, &b, projdb.DeviceInboxDeleteDeviceParams{UserID: d.UserID, DeviceID: d.DeviceID}); err != nil {
				return fmt.Errorf("to_device: %w", err)
			}
		case eventlog.TypeAllDevicesLoggedOut, eventlog.TypeAccountDeactivated:
			var d struct {
				UserID string `json:"user_id"`
			}
			if err := e.Decode(&d); err != nil {
				return fmt.Errorf("to_device: %w", err)
			}
			if err := q.DeviceInboxDeleteUser(ctx, &b, d.UserID); err != nil {
				return fmt.Errorf("to_device: %w", err)
			}
		case eventlog.TypeToDeviceAcknowledged:
			var d eventlog.ToDeviceAcknowledged
			if err := e.Decode(&d); err != nil {
				return fmt.Errorf("to_device: %w", err)
			}
			if err := q.DeviceInboxAcknowledge(ctx, &b, projdb.DeviceInboxAcknowledgeParams{UserID: d.UserID, DeviceID: d.DeviceID, UpTo: d.UpTo}); err != nil {
				return fmt.Errorf("to_device: %w", err)
			}
		}
	}
	if pos != start {
		if err := q.DeviceInboxSetPosition(ctx, &b, pos); err != nil {
			return fmt.Errorf("to_device: %w", err)
		}
	}
	return b.Send(ctx, tx)
}
