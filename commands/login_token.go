package commands

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/tokens"
)

// loginTokenLifetime is how long an m.login.token token may be exchanged; Synapse's
// default, long enough to hand a session to another device or back from SSO.
const loginTokenLifetime = 2 * time.Minute

// IssuedLoginToken is a login token for m.login.token.
type IssuedLoginToken struct {
	Token     string
	ExpiresIn time.Duration
	Position  eventlog.Position
}

// IssueLoginToken issues a short-lived, single-use login token for the user after
// user-interactive authentication (POST /login/get_token).
func (c *Commands) IssueLoginToken(ctx context.Context, meta Meta, userID string, auth *AuthDict) (IssuedLoginToken, error) {
	ok := c.checkUIAPassword(ctx, userID, auth)
	token := tokens.NewLoginToken()
	expires := c.now().Add(loginTokenLifetime).UTC().Truncate(time.Millisecond)
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		flows, err := c.reauthFlows(ctx, tx, userID)
		if err != nil {
			return nil, err
		}
		events, _, err := c.uia(ctx, tx, uiaRequest{kind: "get_login_token", userID: userID, flows: flows,
			auth: auth, passwordOK: ok}, noOtherStages)
		if err != nil {
			return events, err
		}
		return append(events, loginTokenIssued(userID, token, expires)), nil
	})
	if err != nil {
		return IssuedLoginToken{}, err
	}
	return IssuedLoginToken{Token: token, ExpiresIn: loginTokenLifetime, Position: pos}, nil
}

func loginTokenIssued(userID, token string, expires time.Time) eventlog.NewEvent {
	return eventlog.NewEvent{
		Stream: eventlog.UserStream(userID), Type: eventlog.TypeLoginTokenIssued, ExpectVersion: eventlog.AnyVersion,
		Data: eventlog.LoginTokenIssued{UserID: userID, TokenHash: tokens.Hash(token), ExpiresAt: expires},
	}
}

// TokenLogin asks for an access token with a login token (POST /login, m.login.token).
type TokenLogin struct {
	Token                    string
	DeviceID                 string
	InitialDeviceDisplayName *string
	RefreshToken             bool
}

// LoginWithToken exchanges a login token, once, before it expires.
func (c *Commands) LoginWithToken(ctx context.Context, meta Meta, req TokenLogin) (LoggedIn, error) {
	hash := tokens.Hash(req.Token)
	login := c.newLogin(req.DeviceID, req.InitialDeviceDisplayName, req.RefreshToken)
	var userID string
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		t, err := c.q.LoginTokenGet(ctx, tx, hash)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrInvalidLoginToken
		}
		if err != nil {
			return nil, err
		}
		if t.Used || !c.now().Before(t.ExpiresAt) {
			return nil, ErrInvalidLoginToken
		}
		u, err := c.q.UserGet(ctx, tx, t.UserID)
		if err != nil {
			return nil, err
		}
		if u.Deactivated {
			return nil, ErrUserDeactivated
		}
		userID = t.UserID
		events, err := c.loginEvents(ctx, tx, login, userID)
		if err != nil {
			return nil, err
		}
		return append([]eventlog.NewEvent{{
			Stream: eventlog.UserStream(userID), Type: eventlog.TypeLoginTokenUsed, ExpectVersion: eventlog.AnyVersion,
			Data: eventlog.LoginTokenUsed{UserID: userID, TokenHash: hash},
		}}, events...), nil
	})
	if err != nil {
		return LoggedIn{}, err
	}
	return LoggedIn{UserID: userID, DeviceID: login.deviceID, AccessToken: login.token, RefreshToken: login.refreshToken,
		ExpiresIn: login.expiresIn, Position: pos}, nil
}
