package commands

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/sql/gen/writedb"
)

// SendToDevice delivers messages (user → device or "*" → content) to devices of this
// server's users (PUT /sendToDevice/{eventType}/{txnId}). A retried transaction sends
// nothing again. Users of other servers need federation and are skipped for now.
func (c *Commands) SendToDevice(ctx context.Context, meta Meta, sender, senderDevice, typ, txnID string, messages map[string]map[string]json.RawMessage) (eventlog.Position, error) {
	txn := &txnRef{DeviceID: senderDevice, Scope: "sendToDevice", TxnID: txnID}
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		if _, err := c.q.RoomTxnGet(ctx, tx, writedb.RoomTxnGetParams{UserID: sender, DeviceID: txn.DeviceID, Scope: txn.Scope, TxnID: txn.TxnID}); err == nil {
			return nil, nil // done before
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return nil, err
		}
		d := eventlog.ToDeviceSent{Sender: sender, SenderDevice: senderDevice, Type: typ, TxnID: txnID}
		for user, devices := range messages {
			if _, server, _ := strings.Cut(user, ":"); server != c.cfg.ServerName {
				continue
			}
			for device, content := range devices {
				targets := []string{device}
				if device == "*" {
					all, err := c.q.DeviceListByUser(ctx, tx, user)
					if err != nil {
						return nil, err
					}
					targets = all
				}
				for _, t := range targets {
					d.Messages = append(d.Messages, eventlog.ToDeviceMessage{UserID: user, DeviceID: t, Content: content})
				}
			}
		}
		return []eventlog.NewEvent{{Stream: eventlog.ToDeviceStream(sender, senderDevice), Type: eventlog.TypeToDeviceSent,
			ExpectVersion: eventlog.AnyVersion, Data: d}}, nil
	})
}

// AcknowledgeToDevice records that a device received its messages up to upTo, which
// can then be deleted.
func (c *Commands) AcknowledgeToDevice(ctx context.Context, meta Meta, userID, deviceID string, upTo int64) (eventlog.Position, error) {
	return c.run(ctx, meta, func(context.Context, pgx.Tx) ([]eventlog.NewEvent, error) {
		return []eventlog.NewEvent{{Stream: eventlog.ToDeviceStream(userID, deviceID), Type: eventlog.TypeToDeviceAcknowledged,
			ExpectVersion: eventlog.AnyVersion, Data: eventlog.ToDeviceAcknowledged{UserID: userID, DeviceID: deviceID, UpTo: upTo}}}, nil
	})
}
