package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/sql/gen/writedb"
)

// passwordFlows are the flows that re-authenticate a logged-in user without single
// sign-on (reauthFlows).
var passwordFlows = [][]string{{StagePassword}}

// ChangePassword replaces a user's password (POST /account/password).
type ChangePassword struct {
	UserID      string
	DeviceID    string // the device making the request: it stays logged in
	NewPassword string
	// LogoutDevices logs out every other device of the user.
	LogoutDevices bool
	Auth          *AuthDict
}

// ChangePassword re-authenticates the user with their current password
// (user-interactive authentication), then stores the new password's hash.
func (c *Commands) ChangePassword(ctx context.Context, meta Meta, req ChangePassword) (eventlog.Position, error) {
	if req.NewPassword == "" {
		return eventlog.Position{}, badRequest("new_password must not be empty")
	}
	if len(req.NewPassword) > maxPasswordLength {
		return eventlog.Position{}, badRequest("password too long")
	}
	ok := c.checkUIAPassword(ctx, req.UserID, req.Auth)
	var hash string
	if ok || completedOutOfBand(req.Auth) {
		hash = c.hashPassword(req.NewPassword)
	}
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		flows, err := c.reauthFlows(ctx, tx, req.UserID)
		if err != nil {
			return nil, err
		}
		events, _, err := c.uia(ctx, tx, uiaRequest{kind: "password", userID: req.UserID, flows: flows,
			auth: req.Auth, passwordOK: ok}, noOtherStages)
		if err != nil {
			return events, err
		}
		if hash == "" {
			return nil, errors.New("change password: authenticated without a hashed password")
		}
		events = append(events, eventlog.NewEvent{
			Stream: eventlog.UserStream(req.UserID), Type: eventlog.TypePasswordChanged, ExpectVersion: eventlog.AnyVersion,
			Data: eventlog.PasswordChanged{UserID: req.UserID, PasswordHash: hash},
		})
		if req.LogoutDevices {
			devices, err := c.q.DeviceListByUser(ctx, tx, req.UserID)
			if err != nil {
				return nil, err
			}
			for _, d := range devices {
				if d != req.DeviceID {
					events = append(events, logoutEvent(req.UserID, d))
				}
			}
		}
		return events, nil
	})
}

// Deactivate ends an account (POST /account/deactivate): it can no longer log in, and
// every device and token of it is gone. Its 3PIDs are unbound from identity servers
// (idServer, or the ones they were bound at); the result says whether that worked for
// all of them ("success") or not ("no-support").
func (c *Commands) Deactivate(ctx context.Context, meta Meta, userID string, erase bool, idServer string, auth *AuthDict) (eventlog.Position, string, error) {
	ok := c.checkUIAPassword(ctx, userID, auth)
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		flows, err := c.reauthFlows(ctx, tx, userID)
		if err != nil {
			return nil, err
		}
		events, _, err := c.uia(ctx, tx, uiaRequest{kind: "deactivate", userID: userID, flows: flows,
			auth: auth, passwordOK: ok}, noOtherStages)
		if err != nil {
			return events, err
		}
		return append(events, eventlog.NewEvent{
			Stream: eventlog.UserStream(userID), Type: eventlog.TypeAccountDeactivated, ExpectVersion: eventlog.AnyVersion,
			Data: eventlog.AccountDeactivated{UserID: userID, Erase: erase},
		}), nil
	})
	if err != nil {
		return pos, "", err
	}
	unbound, result := c.unbindAll(ctx, meta, userID, idServer)
	if pos.Less(unbound) {
		pos = unbound
	}
	// A deactivated user leaves every room they are in, invited to or knocking on, as
	// Synapse does; each room is its own command (and lock).
	rooms, err := c.q.RoomsOfMember(ctx, c.pool, userID)
	if err != nil {
		return pos, "", fmt.Errorf("deactivate: rooms: %w", err)
	}
	for _, roomID := range rooms {
		sent, err := c.ChangeMembership(ctx, meta, Membership{RoomID: roomID, Sender: userID, Target: userID, Action: ActionLeave})
		if err != nil {
			c.logger.WarnContext(ctx, "deactivated user could not leave a room", slog.String("room_id", roomID), slog.Any("err", err))
			continue
		}
		if pos.Less(sent.Position) {
			pos = sent.Position
		}
	}
	return pos, result, nil
}

// DeleteDevices logs out the user's devices (DELETE /devices/{deviceId}, POST
// /delete_devices) after user-interactive authentication. Devices that do not exist
// are ignored: deleting twice is not an error.
func (c *Commands) DeleteDevices(ctx context.Context, meta Meta, userID string, deviceIDs []string, auth *AuthDict) (eventlog.Position, error) {
	ok := c.checkUIAPassword(ctx, userID, auth)
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		flows, err := c.reauthFlows(ctx, tx, userID)
		if err != nil {
			return nil, err
		}
		events, _, err := c.uia(ctx, tx, uiaRequest{kind: "delete_devices", operation: deviceSet(deviceIDs), userID: userID, flows: flows,
			auth: auth, passwordOK: ok}, noOtherStages)
		if err != nil {
			return events, err
		}
		existing, err := c.q.DeviceListExisting(ctx, tx, writedb.DeviceListExistingParams{UserID: userID, DeviceIds: deviceIDs})
		if err != nil {
			return nil, err
		}
		for _, d := range existing {
			events = append(events, logoutEvent(userID, d))
		}
		return events, nil
	})
}

// RenameDevice sets a device's display name (PUT /devices/{deviceId}).
func (c *Commands) RenameDevice(ctx context.Context, meta Meta, userID, deviceID, name string) (eventlog.Position, error) {
	if len(name) > 1000 {
		return eventlog.Position{}, badRequest("display_name too long")
	}
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		exists, err := c.q.DeviceExists(ctx, tx, writedb.DeviceExistsParams{UserID: userID, DeviceID: deviceID})
		if err != nil {
			return nil, err
		}
		if !exists {
			return nil, ErrNotFound
		}
		return []eventlog.NewEvent{{
			Stream: eventlog.UserStream(userID), Type: eventlog.TypeDeviceRenamed, ExpectVersion: eventlog.AnyVersion,
			Data: eventlog.DeviceRenamed{UserID: userID, DeviceID: deviceID, DisplayName: name},
		}}, nil
	})
}

// RecordDevicesSeen appends one event with the latest sightings of devices.
func (c *Commands) RecordDevicesSeen(ctx context.Context, meta Meta, seen []eventlog.DeviceSeen) (eventlog.Position, error) {
	if len(seen) == 0 {
		return eventlog.Position{}, nil
	}
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		return []eventlog.NewEvent{{
			Stream: eventlog.DevicesSeenStream, Type: eventlog.TypeDevicesSeen, ExpectVersion: eventlog.AnyVersion,
			Data: eventlog.DevicesSeen{Seen: seen},
		}}, nil
	})
}

func logoutEvent(userID, deviceID string) eventlog.NewEvent {
	return eventlog.NewEvent{
		Stream: eventlog.UserStream(userID), Type: eventlog.TypeDeviceLoggedOut, ExpectVersion: eventlog.AnyVersion,
		Data: eventlog.DeviceLoggedOut{UserID: userID, DeviceID: deviceID},
	}
}

// noOtherStages is the stage check of operations whose flows have only m.login.password
// (checked before the transaction) and m.login.dummy.
func noOtherStages(stage string, _ *eventlog.UIAStageCompleted) error {
	return badRequest("stage %q is not supported here", stage)
}

// deviceSet names a set of devices, whatever their order and repetitions.
func deviceSet(ids []string) string {
	set := slices.Clone(ids)
	slices.Sort(set)
	b, _ := json.Marshal(slices.Compact(set)) // strings always marshal
	return string(b)
}
