package queries

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/sql/gen/readdb"
)

// Device is a user's device as GET /devices shows it.
type Device struct {
	DeviceID    string
	DisplayName *string
	LastSeenIp  *string
	LastSeenTs  *time.Time
}

// Devices lists the user's devices.
func (q *Queries) Devices(ctx context.Context, userID string) ([]Device, error) {
	rows, err := q.q.DeviceListByUser(ctx, q.pool, userID)
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	out := make([]Device, len(rows))
	for i, r := range rows {
		out[i] = Device(r)
	}
	return out, nil
}

// Device returns one of the user's devices, or ErrNotFound.
func (q *Queries) Device(ctx context.Context, userID, deviceID string) (Device, error) {
	r, err := q.q.DeviceGet(ctx, q.pool, readdb.DeviceGetParams{UserID: userID, DeviceID: deviceID})
	if errors.Is(err, pgx.ErrNoRows) {
		return Device{}, ErrNotFound
	}
	if err != nil {
		return Device{}, fmt.Errorf("device: %w", err)
	}
	return Device(r), nil
}
