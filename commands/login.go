package commands

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/mxid"
	"spelt.dev/spelt/internal/tokens"
	"spelt.dev/spelt/sql/gen/writedb"
)

// newLogin prepares a device login: the device ID (generated when not given) and a
// fresh access token, of which only the hash goes into the event.
type pendingLogin struct {
	deviceID     string
	displayName  *string
	token        string
	refreshToken string // empty unless asked for
	expiresIn    time.Duration
	expiresAt    *time.Time
}

// newLogin prepares the tokens of a login; refresh asks for a refresh token, and then
// the access token lives RefreshableLifetime.
func (c *Commands) newLogin(deviceID string, displayName *string, refresh bool) pendingLogin {
	if deviceID == "" {
		deviceID = tokens.RandomUpper(10)
	}
	l := c.newTokens(refresh)
	l.deviceID, l.displayName = deviceID, displayName
	return l
}

// newTokens makes an access token (and a refresh token when asked for) and works out
// when the access token expires.
func (c *Commands) newTokens(refresh bool) pendingLogin {
	l := pendingLogin{token: tokens.NewAccessToken(), expiresIn: c.cfg.AccessTokenLifetime}
	if refresh {
		l.refreshToken = tokens.NewRefreshToken()
		l.expiresIn = c.cfg.RefreshableLifetime
	}
	if l.expiresIn > 0 {
		t := c.now().Add(l.expiresIn).UTC().Truncate(time.Millisecond)
		l.expiresAt = &t
	}
	return l
}

// events are the events of the login: the tokens of a device that already exists are
// revoked first (spec: "If the client sets the device_id, the server will invalidate
// any access and refresh tokens previously assigned to that device").
func (c *Commands) loginEvents(ctx context.Context, tx pgx.Tx, l pendingLogin, userID string) ([]eventlog.NewEvent, error) {
	exists, err := c.q.DeviceExists(ctx, tx, writedb.DeviceExistsParams{UserID: userID, DeviceID: l.deviceID})
	if err != nil {
		return nil, err
	}
	if !exists {
		return []eventlog.NewEvent{l.event(userID)}, nil
	}
	return []eventlog.NewEvent{{
		Stream: eventlog.UserStream(userID), Type: eventlog.TypeDeviceTokensRevoked, ExpectVersion: eventlog.AnyVersion,
		Data: eventlog.DeviceTokensRevoked{UserID: userID, DeviceID: l.deviceID},
	}, l.event(userID)}, nil
}

func (l pendingLogin) event(userID string) eventlog.NewEvent {
	var refreshHash []byte
	if l.refreshToken != "" {
		refreshHash = tokens.Hash(l.refreshToken)
	}
	return eventlog.NewEvent{
		Stream: eventlog.UserStream(userID), Type: eventlog.TypeDeviceLoggedIn, ExpectVersion: eventlog.AnyVersion,
		Data: eventlog.DeviceLoggedIn{UserID: userID, DeviceID: l.deviceID, DisplayName: l.displayName,
			TokenHash: tokens.Hash(l.token), ExpiresAt: l.expiresAt, RefreshTokenHash: refreshHash},
	}
}

// Login asks for an access token with a password (POST /login, m.login.password).
type Login struct {
	// User is a localpart or a full user ID.
	User string
	// Medium and Address name the user by a 3PID of their account instead
	// (m.id.thirdparty, m.id.phone).
	Medium, Address          string
	Password                 string
	DeviceID                 string
	InitialDeviceDisplayName *string
	RefreshToken             bool
}

// LoggedIn is the outcome of a login (or a refresh).
type LoggedIn struct {
	UserID       string
	DeviceID     string
	AccessToken  string
	RefreshToken string
	ExpiresIn    time.Duration
	Position     eventlog.Position
}

// Login checks the password and logs in a device (a new one unless DeviceID names one).
func (c *Commands) Login(ctx context.Context, meta Meta, req Login) (LoggedIn, error) {
	userID := c.resolveUser(req.User)
	if req.Medium != "" {
		var err error
		if userID, err = c.threepidLoginUser(ctx, req.Medium, req.Address); err != nil {
			return LoggedIn{}, err
		}
	}
	u, err := c.q.UserGet(ctx, c.pool, userID)
	if errors.Is(err, pgx.ErrNoRows) {
		c.checkPassword(dummyHash, req.Password)
		return LoggedIn{}, ErrInvalidCredentials
	}
	if err != nil {
		return LoggedIn{}, err
	}
	if u.PasswordHash == nil {
		// As long as a wrong password takes: no telling which accounts have none.
		c.checkPassword(dummyHash, req.Password)
		return LoggedIn{}, ErrInvalidCredentials
	}
	if !c.checkPassword(*u.PasswordHash, req.Password) {
		return LoggedIn{}, ErrInvalidCredentials
	}
	if u.Deactivated {
		return LoggedIn{}, ErrUserDeactivated
	}
	meta.Actor = userID
	return c.logIn(ctx, meta, userID, req)
}

// logIn logs a device of an existing, active account in.
func (c *Commands) logIn(ctx context.Context, meta Meta, userID string, req Login) (LoggedIn, error) {
	login := c.newLogin(req.DeviceID, req.InitialDeviceDisplayName, req.RefreshToken)
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		u, err := c.q.UserGet(ctx, tx, userID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrInvalidCredentials
		}
		if err != nil {
			return nil, err
		}
		if u.Deactivated {
			return nil, ErrUserDeactivated
		}
		return c.loginEvents(ctx, tx, login, userID)
	})
	if err != nil {
		return LoggedIn{}, err
	}
	return LoggedIn{UserID: userID, DeviceID: login.deviceID, AccessToken: login.token, RefreshToken: login.refreshToken,
		ExpiresIn: login.expiresIn, Position: pos}, nil
}

// Refresh exchanges a refresh token for a new access token and a new refresh token
// (POST /refresh). The access tokens issued with the refresh token used stop working;
// the refresh token itself works until its successor is used (spec: "Refreshing access
// tokens"), and using it again replaces the pair it gave before.
func (c *Commands) Refresh(ctx context.Context, meta Meta, refreshToken string) (LoggedIn, error) {
	used := tokens.Hash(refreshToken)
	l := c.newTokens(true)
	var out LoggedIn
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		rt, err := c.q.RefreshTokenGet(ctx, tx, used)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrUnknownRefreshToken
		}
		if err != nil {
			return nil, err
		}
		// Used before: the client lost the answer; the pair it got then is replaced.
		var revoke [][]byte
		if rt.NextHash != nil {
			revoke = append(revoke, rt.NextHash)
		}
		// Its predecessor was kept for such a retry; using this one ends that.
		preds, err := c.q.RefreshTokenPredecessor(ctx, tx, used)
		if err != nil {
			return nil, err
		}
		revoke = append(revoke, preds...)
		out = LoggedIn{UserID: rt.UserID, DeviceID: rt.DeviceID, AccessToken: l.token, RefreshToken: l.refreshToken, ExpiresIn: l.expiresIn}
		return []eventlog.NewEvent{{
			Stream: eventlog.UserStream(rt.UserID), Type: eventlog.TypeTokensRefreshedV2, ExpectVersion: eventlog.AnyVersion,
			Data: eventlog.TokensRefreshedV2{UserID: rt.UserID, DeviceID: rt.DeviceID, UsedRefreshHash: used,
				TokenHash: tokens.Hash(l.token), ExpiresAt: l.expiresAt, RefreshTokenHash: tokens.Hash(l.refreshToken), Revoke: revoke},
		}}, nil
	})
	if err != nil {
		return LoggedIn{}, err
	}
	out.Position = pos
	return out, nil
}

// RetireRefreshToken ends the refresh token that the access token just used was
// refreshed from: the client has the new tokens (spec: "Refreshing access tokens").
func (c *Commands) RetireRefreshToken(ctx context.Context, meta Meta, userID string, refreshHash []byte) (eventlog.Position, error) {
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		if _, err := c.q.RefreshTokenGet(ctx, tx, refreshHash); errors.Is(err, pgx.ErrNoRows) {
			// Gone already (its successor was used, or the device logged out): only
			// the read model's reminder is left to clear.
		} else if err != nil {
			return nil, err
		}
		return []eventlog.NewEvent{{
			Stream: eventlog.UserStream(userID), Type: eventlog.TypeRefreshTokenRetired, ExpectVersion: eventlog.AnyVersion,
			Data: eventlog.RefreshTokenRetired{UserID: userID, RefreshHash: refreshHash},
		}}, nil
	})
}

// resolveUser turns a login identifier (a localpart or a user ID of this server, any
// case) into a user ID; a user ID of another server is returned as it is, and matches
// no account here.
func (c *Commands) resolveUser(user string) string {
	if lp, server, ok := mxid.SplitUserID(user); ok {
		if server != c.cfg.ServerName {
			return user
		}
		return mxid.UserID(strings.ToLower(lp), server)
	}
	return mxid.UserID(strings.ToLower(user), c.cfg.ServerName)
}

// Logout deletes the device and every access token of it (POST /logout).
func (c *Commands) Logout(ctx context.Context, meta Meta, userID, deviceID string) (eventlog.Position, error) {
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		return []eventlog.NewEvent{logoutEvent(userID, deviceID)}, nil
	})
}

// LogoutAll deletes every device of the user and all their tokens (POST /logout/all).
func (c *Commands) LogoutAll(ctx context.Context, meta Meta, userID string) (eventlog.Position, error) {
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		return []eventlog.NewEvent{{
			Stream: eventlog.UserStream(userID), Type: eventlog.TypeAllDevicesLoggedOut, ExpectVersion: eventlog.AnyVersion,
			Data: eventlog.AllDevicesLoggedOut{UserID: userID},
		}}, nil
	})
}
