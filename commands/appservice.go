package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/mxid"
)

// reservedFor refuses userID when it is in an exclusive namespace of an application
// service other than the one asking (asking: its ID, "" for a user).
func (c *Commands) reservedFor(userID, asking string) error {
	if r := c.cfg.Appservices.ExclusiveUser(userID); r != nil && r.ID != asking {
		return ErrExclusive
	}
	return nil
}

// aliasReservedFor refuses an alias in an exclusive namespace of an application
// service other than the one asking.
func (c *Commands) aliasReservedFor(alias, asking string) error {
	if r := c.cfg.Appservices.ExclusiveAlias(alias); r != nil && r.ID != asking {
		return ErrExclusive
	}
	return nil
}

// registerForAppservice registers a user for an application service (POST /register
// with type m.login.application_service and the service's token): no user-interactive
// authentication, even with registration closed, but only user IDs the service owns
// (spec: application service API, "Server admin style permissions").
func (c *Commands) registerForAppservice(ctx context.Context, meta Meta, req Register) (Registered, error) {
	as := c.cfg.Appservices.ByID(req.Appservice)
	if as == nil {
		return Registered{}, fmt.Errorf("register: unknown appservice %q", req.Appservice)
	}
	if req.Username == "" {
		return Registered{}, &InvalidUsernameError{Reason: "an application service must give a username"}
	}
	if err := mxid.ValidateLocalpart(req.Username, c.cfg.ServerName); err != nil {
		return Registered{}, &InvalidUsernameError{Reason: err.Error()}
	}
	userID := mxid.UserID(req.Username, c.cfg.ServerName)
	if !as.OwnsUser(userID, c.cfg.ServerName) {
		return Registered{}, ErrExclusive
	}
	if err := c.reservedFor(userID, as.ID); err != nil {
		return Registered{}, err
	}
	meta.Appservice = as.ID
	login := c.newLogin(req.DeviceID, req.InitialDeviceDisplayName, req.RefreshToken)
	out := Registered{UserID: userID}
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		if err := c.checkLocalpart(ctx, tx, req.Username); err != nil {
			return nil, err
		}
		events := []eventlog.NewEvent{{
			Stream: eventlog.UserStream(userID), Type: eventlog.TypeAccountRegistered, ExpectVersion: eventlog.NoStream,
			Data: eventlog.AccountRegistered{UserID: userID, Localpart: req.Username, Appservice: as.ID},
		}}
		if !req.InhibitLogin {
			events = append(events, login.event(userID))
		}
		return events, nil
	})
	if err != nil {
		return Registered{}, err
	}
	if !req.InhibitLogin {
		out.DeviceID, out.AccessToken, out.RefreshToken, out.ExpiresIn = login.deviceID, login.token, login.refreshToken, login.expiresIn
	}
	out.Position = pos
	return out, nil
}

// LoginForAppservice logs in a device of a user an application service owns (POST
// /login with m.login.application_service and the service's token).
func (c *Commands) LoginForAppservice(ctx context.Context, meta Meta, appserviceID string, req Login) (LoggedIn, error) {
	as := c.cfg.Appservices.ByID(appserviceID)
	if as == nil {
		return LoggedIn{}, fmt.Errorf("login: unknown appservice %q", appserviceID)
	}
	userID := c.resolveUser(req.User)
	if !as.OwnsUser(userID, c.cfg.ServerName) {
		return LoggedIn{}, ErrExclusive
	}
	meta.Actor, meta.Appservice = userID, as.ID
	return c.logIn(ctx, meta, userID, req)
}

// EnsureAppserviceSenders registers the sender user of every application service that
// has none yet, so that the service can act as it from its first request. It runs
// when the server starts.
func (c *Commands) EnsureAppserviceSenders(ctx context.Context, meta Meta) (eventlog.Position, error) {
	var pos eventlog.Position
	for _, as := range c.cfg.Appservices.All() {
		userID := as.Sender(c.cfg.ServerName)
		m := meta
		m.Appservice = as.ID
		p, err := c.run(ctx, m, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
			if _, err := c.q.UserGet(ctx, tx, userID); err == nil {
				return nil, nil
			} else if !errors.Is(err, pgx.ErrNoRows) {
				return nil, err
			}
			return []eventlog.NewEvent{{
				Stream: eventlog.UserStream(userID), Type: eventlog.TypeAccountRegistered, ExpectVersion: eventlog.NoStream,
				Data: eventlog.AccountRegistered{UserID: userID, Localpart: as.SenderLocalpart, Appservice: as.ID},
			}}, nil
		})
		if err != nil {
			return pos, fmt.Errorf("appservice %s sender: %w", as.ID, err)
		}
		if pos.Less(p) {
			pos = p
		}
	}
	return pos, nil
}
