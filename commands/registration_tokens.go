package commands

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/tokens"
	"spelt.dev/spelt/sql/gen/writedb"
)

// CreateRegistrationToken creates a registration token (an operator command). An empty
// token is generated.
func (c *Commands) CreateRegistrationToken(ctx context.Context, meta Meta, token string, usesAllowed *int32, expiry *time.Time) (string, eventlog.Position, error) {
	if token == "" {
		token = tokens.Random(12)
	}
	if len(token) > 64 || strings.ContainsFunc(token, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '~' || r == '-')
	}) {
		return "", eventlog.Position{}, badRequest("registration tokens are at most 64 characters of [A-Za-z0-9._~-]")
	}
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		return []eventlog.NewEvent{{
			Stream: eventlog.RegistrationTokenStream(token), Type: eventlog.TypeRegistrationTokenCreated, ExpectVersion: eventlog.NoStream,
			Data: eventlog.RegistrationTokenCreated{Token: token, UsesAllowed: usesAllowed, ExpiryTime: expiry},
		}}, nil
	})
	if errors.Is(err, eventlog.ErrVersionConflict) {
		return "", pos, badRequest("registration token %q already exists", token)
	}
	return token, pos, err
}

// RegistrationTokenChange is what UpdateRegistrationToken changes; nil fields keep
// their value, and a Clear flag removes the limit.
type RegistrationTokenChange struct {
	UsesAllowed      *int32
	ClearUsesAllowed bool
	ExpiryTime       *time.Time
	ClearExpiryTime  bool
}

// UpdateRegistrationToken changes a token's limits (an operator command).
func (c *Commands) UpdateRegistrationToken(ctx context.Context, meta Meta, token string, ch RegistrationTokenChange) (eventlog.Position, error) {
	if ch.UsesAllowed != nil && *ch.UsesAllowed < 0 {
		return eventlog.Position{}, badRequest("uses_allowed must be a non-negative integer or null")
	}
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		t, err := c.liveRegistrationToken(ctx, tx, token)
		if err != nil {
			return nil, err
		}
		d := eventlog.RegistrationTokenUpdated{Token: token, UsesAllowed: t.UsesAllowed, ExpiryTime: t.ExpiryTime}
		if ch.UsesAllowed != nil || ch.ClearUsesAllowed {
			d.UsesAllowed = ch.UsesAllowed
		}
		if ch.ExpiryTime != nil || ch.ClearExpiryTime {
			d.ExpiryTime = ch.ExpiryTime
		}
		return []eventlog.NewEvent{{
			Stream: eventlog.RegistrationTokenStream(token), Type: eventlog.TypeRegistrationTokenUpdated,
			ExpectVersion: eventlog.AnyVersion, Data: d,
		}}, nil
	})
}

// RevokeRegistrationToken makes a token unusable for good (an operator command).
func (c *Commands) RevokeRegistrationToken(ctx context.Context, meta Meta, token string) (eventlog.Position, error) {
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		if _, err := c.liveRegistrationToken(ctx, tx, token); err != nil {
			return nil, err
		}
		return []eventlog.NewEvent{{
			Stream: eventlog.RegistrationTokenStream(token), Type: eventlog.TypeRegistrationTokenRevoked,
			ExpectVersion: eventlog.AnyVersion, Data: eventlog.RegistrationTokenRevoked{Token: token},
		}}, nil
	})
}

// liveRegistrationToken returns the token unless it does not exist or was revoked.
func (c *Commands) liveRegistrationToken(ctx context.Context, tx pgx.Tx, token string) (writedb.WritemodelRegistrationToken, error) {
	t, err := c.q.RegistrationTokenGet(ctx, tx, token)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && t.Revoked) {
		return t, ErrNotFound
	}
	return t, err
}
