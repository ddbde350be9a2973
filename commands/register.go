package commands

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/mxid"
	"spelt.dev/spelt/internal/tokens"
	"spelt.dev/spelt/sql/gen/writedb"
)

// Register asks for a new account (POST /register).
type Register struct {
	Guest                    bool
	Username                 string
	Password                 string
	Auth                     *AuthDict
	DeviceID                 string
	InitialDeviceDisplayName *string
	InhibitLogin             bool
	RefreshToken             bool
	// GuestUserID is the guest upgrading to a full account (its guest_access_token
	// was checked by the caller).
	GuestUserID string
	// Appservice is the application service registering the user (its token was
	// checked by the caller).
	Appservice string
}

// Registered is the outcome of a registration.
type Registered struct {
	UserID       string
	DeviceID     string
	AccessToken  string
	RefreshToken string
	ExpiresIn    time.Duration
	Position     eventlog.Position
}

// maxPasswordLength bounds what we hash.
const maxPasswordLength = 512

// Register registers a user through user-interactive authentication: the first call
// without auth starts a session and fails with *AuthRequiredError listing the flows;
// completing the flow's stages creates the account and, unless inhibited, logs in a
// device.
func (c *Commands) Register(ctx context.Context, meta Meta, req Register) (Registered, error) {
	if req.Guest {
		return c.registerGuest(ctx, meta, req)
	}
	if req.Appservice != "" {
		return c.registerForAppservice(ctx, meta, req)
	}
	if !c.cfg.RegistrationEnabled {
		return Registered{}, ErrRegistrationDisabled
	}
	if len(req.Password) > maxPasswordLength {
		return Registered{}, badRequest("password too long")
	}
	localpart := req.Username
	upgrade := req.GuestUserID != ""
	if upgrade {
		// A guest keeps its user ID; the spec has it name its own localpart.
		if lp, _, _ := mxid.SplitUserID(req.GuestUserID); lp != localpart {
			return Registered{}, &InvalidUsernameError{Reason: "a guest upgrading must give its own localpart as username"}
		}
	} else if localpart != "" {
		if err := c.checkLocalpart(ctx, c.pool, localpart); err != nil {
			return Registered{}, err
		}
		if err := c.reservedFor(mxid.UserID(localpart, c.cfg.ServerName), ""); err != nil {
			return Registered{}, err
		}
	}
	// Hash before the transaction: argon2id takes tens of milliseconds, and a
	// transaction holding an id that long would hold back every reader of the log.
	// Anyone can call this, so the hash is made only for a session that exists (a
	// made-up one would cost us the hash for nothing).
	var hash string
	if req.Auth != nil && req.Password != "" {
		if req.Auth.Session != "" && !c.registrationSessionKnown(ctx, req.Auth.Session) {
			return Registered{}, ErrUnknownSession
		}
		hash = c.hashPassword(req.Password)
	}
	flow := []string{StageDummy}
	if c.cfg.RegistrationRequires {
		flow = []string{StageRegistrationToken}
	}
	flow = c.withEmailStage(flow)
	var params map[string]any
	if t := c.cfg.Terms; t != nil {
		// The policy comes first, as in Synapse's flows.
		flow = append([]string{StageTerms}, flow...)
		params = map[string]any{StageTerms: map[string]any{"policies": map[string]any{
			"terms_of_service": map[string]any{"version": t.Version, "en": map[string]string{"name": t.Name, "url": t.URL}},
		}}}
	}
	var out Registered
	login := c.newLogin(req.DeviceID, req.InitialDeviceDisplayName, req.RefreshToken)
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		tokenVersion := eventlog.AnyVersion
		email := registrationEmail{c: c}
		events, stageDone, err := c.uia(ctx, tx, uiaRequest{kind: "register", flows: [][]string{flow}, params: params, auth: req.Auth},
			func(stage string, done *eventlog.UIAStageCompleted) error {
				if stage == StageTerms && c.cfg.Terms != nil {
					done.TermsVersion = c.cfg.Terms.Version
					return nil
				}
				if stage == StageEmailIdentity {
					return email.check(ctx, tx, req.Auth, done)
				}
				if stage != StageRegistrationToken {
					return badRequest("stage %q is not supported", stage)
				}
				// The token's version before its uses are counted: a registration that
				// uses it meanwhile makes this one's append conflict and recount.
				v, err := eventlog.StreamVersion(ctx, tx, eventlog.RegistrationTokenStream(req.Auth.Token))
				if err != nil {
					return err
				}
				tokenVersion = v
				if err := c.checkRegistrationToken(ctx, tx, req.Auth.Token); err != nil {
					return err
				}
				done.Token = req.Auth.Token
				return nil
			})
		events = append(events, email.used...)
		if err != nil {
			return events, err
		}
		// Every stage is done: create the account (or make the guest a user).
		lp := localpart
		switch {
		case upgrade:
			u, err := c.q.UserGet(ctx, tx, req.GuestUserID)
			if err != nil {
				return nil, err
			}
			if !u.IsGuest || u.Deactivated {
				return nil, ErrUserInUse
			}
		case lp == "":
			lp = "u" + lowerRandom(11)
		default:
			if err := c.checkLocalpart(ctx, tx, lp); err != nil {
				return nil, err
			}
		}
		userID := mxid.UserID(lp, c.cfg.ServerName)
		if upgrade {
			events = append(events, eventlog.NewEvent{
				Stream: eventlog.UserStream(userID), Type: eventlog.TypeGuestUpgraded, ExpectVersion: eventlog.AnyVersion,
				Data: eventlog.GuestUpgraded{UserID: userID, PasswordHash: hash},
			})
		} else {
			events = append(events, eventlog.NewEvent{
				Stream: eventlog.UserStream(userID), Type: eventlog.TypeAccountRegistered, ExpectVersion: eventlog.NoStream,
				Data: eventlog.AccountRegistered{UserID: userID, Localpart: lp, PasswordHash: hash},
			})
		}
		added, err := email.added(ctx, tx, userID, stageDone.Session)
		if err != nil {
			return nil, err
		}
		events = append(events, added...)
		if stageDone.Token != "" {
			events = append(events, eventlog.NewEvent{
				Stream: eventlog.RegistrationTokenStream(stageDone.Token), Type: eventlog.TypeRegistrationTokenUsed,
				Data: eventlog.RegistrationTokenUsed{Token: stageDone.Token, UserID: userID}, ExpectVersion: tokenVersion,
			})
		}
		out = Registered{UserID: userID}
		if !req.InhibitLogin {
			events = append(events, login.event(userID))
			out.DeviceID, out.AccessToken, out.RefreshToken, out.ExpiresIn = login.deviceID, login.token, login.refreshToken, login.expiresIn
		}
		return events, nil
	})
	if err != nil {
		return Registered{}, err
	}
	out.Position = pos
	return out, nil
}

// registerGuest creates a guest account: no user-interactive authentication, no
// password, and a numeric localpart (numeric IDs are reserved for guests), as Synapse
// does.
func (c *Commands) registerGuest(ctx context.Context, meta Meta, req Register) (Registered, error) {
	if !c.cfg.Guests {
		return Registered{}, ErrGuestsDisabled
	}
	login := c.newLogin("", req.InitialDeviceDisplayName, req.RefreshToken)
	var userID string
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		lp := randomDigits(12)
		userID = mxid.UserID(lp, c.cfg.ServerName)
		// A clash with an existing guest fails the append (NoStream) and the command
		// runs again with another number.
		return []eventlog.NewEvent{{
			Stream: eventlog.UserStream(userID), Type: eventlog.TypeAccountRegistered, ExpectVersion: eventlog.NoStream,
			Data: eventlog.AccountRegistered{UserID: userID, Localpart: lp, Guest: true},
		}, login.event(userID)}, nil
	})
	if err != nil {
		return Registered{}, err
	}
	return Registered{UserID: userID, DeviceID: login.deviceID, AccessToken: login.token, RefreshToken: login.refreshToken,
		ExpiresIn: login.expiresIn, Position: pos}, nil
}

func randomDigits(n int) string {
	s := []byte(tokens.RandomUpper(n))
	for i := range s {
		s[i] = '0' + (s[i]-'A')%10
	}
	if s[0] == '0' {
		s[0] = '1'
	}
	return string(s)
}

// RegisterAdmin creates an account without user-interactive authentication, for an
// operator (shared-secret registration, the admin CLI).
type RegisterAdmin struct {
	Username    string
	Password    string
	Admin       bool
	DisplayName *string
}

// RegisterByAdmin creates the account and logs in a new device.
func (c *Commands) RegisterByAdmin(ctx context.Context, meta Meta, req RegisterAdmin) (Registered, error) {
	if len(req.Password) > maxPasswordLength {
		return Registered{}, badRequest("password too long")
	}
	if err := c.checkLocalpart(ctx, c.pool, req.Username); err != nil {
		return Registered{}, err
	}
	var hash string
	if req.Password != "" {
		hash = c.hashPassword(req.Password)
	}
	login := c.newLogin("", nil, false)
	userID := mxid.UserID(req.Username, c.cfg.ServerName)
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		if err := c.checkLocalpart(ctx, tx, req.Username); err != nil {
			return nil, err
		}
		return []eventlog.NewEvent{{
			Stream: eventlog.UserStream(userID), Type: eventlog.TypeAccountRegistered, ExpectVersion: eventlog.NoStream,
			Data: eventlog.AccountRegistered{UserID: userID, Localpart: req.Username, PasswordHash: hash, Admin: req.Admin},
		}, login.event(userID)}, nil
	})
	if err != nil {
		return Registered{}, err
	}
	return Registered{UserID: userID, DeviceID: login.deviceID, AccessToken: login.token,
		ExpiresIn: login.expiresIn, Position: pos}, nil
}

// checkLocalpart validates a requested localpart and checks that it is free.
func (c *Commands) checkLocalpart(ctx context.Context, db writedb.DBTX, localpart string) error {
	if err := mxid.ValidateLocalpart(localpart, c.cfg.ServerName); err != nil {
		return &InvalidUsernameError{Reason: err.Error()}
	}
	taken, err := c.q.UserLocalpartTaken(ctx, db, localpart)
	if err != nil {
		return err
	}
	if taken {
		return ErrUserInUse
	}
	return nil
}

func (c *Commands) checkRegistrationToken(ctx context.Context, db writedb.DBTX, token string) error {
	t, err := c.q.RegistrationTokenGet(ctx, db, token)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrInvalidToken
	}
	if err != nil {
		return err
	}
	if !RegistrationTokenUsable(t.Revoked, t.UsesAllowed, t.Pending, t.Completed, t.ExpiryTime, c.now()) {
		return ErrInvalidToken
	}
	return nil
}

// RegistrationTokenUsable is the validity rule of a registration token.
func RegistrationTokenUsable(revoked bool, usesAllowed *int32, pending, completed int32, expiry *time.Time, now time.Time) bool {
	if revoked {
		return false
	}
	if expiry != nil && !now.Before(*expiry) {
		return false
	}
	if usesAllowed != nil && pending+completed >= *usesAllowed {
		return false
	}
	return true
}

func lowerRandom(n int) string {
	s := []byte(tokens.RandomUpper(n))
	for i := range s {
		s[i] += 'a' - 'A'
	}
	return string(s)
}
