package commands

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/text/cases"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/tokens"
	"spelt.dev/spelt/sql/gen/writedb"
)

// StageEmailIdentity is the user-interactive authentication stage proving control of an
// e-mail address through a validated 3PID session (spec: client-server API,
// "Email-based (identity / homeserver)").
const StageEmailIdentity = "m.login.email.identity"

// 3PID media (spec: appendices, "3PID Types").
const (
	MediumEmail  = "email"
	MediumMSISDN = "msisdn"
)

// What a 3PID validation session is requested for: the endpoint it came from.
const (
	ThreepidPurposeRegister      = "register"       // POST /register/email/requestToken
	ThreepidPurposeAdd           = "add"            // POST /account/3pid/email/requestToken
	ThreepidPurposePasswordReset = "password_reset" // POST /account/password/email/requestToken
)

const (
	// defaultThreepidTokenLifetime is how long a mailed token works when the
	// configuration does not say (Synapse's default).
	defaultThreepidTokenLifetime = time.Hour
	// validatedSessionLifetime is how long a validated session can still be used to add
	// the address, register with it or reset a password.
	validatedSessionLifetime = 24 * time.Hour
	maxEmailLength           = 254
	maxNextLinkLength        = 2048
)

// foldCase is the Unicode case folding the spec asks for e-mail addresses.
var foldCase = cases.Fold()

// CanonicalEmail returns the canonical form of an e-mail address (spec: appendices, "3PID
// Types", E-Mail): a bare user@domain, case-folded, so that Strauß@Example.com and
// strauss@example.com are one address.
func CanonicalEmail(address string) (string, error) {
	address = strings.TrimSpace(address)
	if address == "" || len(address) > maxEmailLength {
		return "", badRequest("email must be an e-mail address of at most %d characters", maxEmailLength)
	}
	parsed, err := mail.ParseAddress(address)
	if err != nil || parsed.Name != "" || parsed.Address != address || strings.Count(address, "@") != 1 {
		return "", badRequest("email must be a bare e-mail address such as alice@example.org")
	}
	local, domain, _ := strings.Cut(address, "@")
	if local == "" || domain == "" || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "", badRequest("email must be an e-mail address such as alice@example.org")
	}
	return foldCase.String(address), nil
}

// validClientSecret reports whether s is a client secret as the spec defines it: 1 to 255
// characters of [0-9a-zA-Z.=_-].
func validClientSecret(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '=' || r == '_' || r == '-')
	})
}

func checkClientSecret(s string) error {
	if !validClientSecret(s) {
		return badRequest("client_secret must be 1 to 255 characters of [0-9a-zA-Z.=_-]")
	}
	return nil
}

// RequestThreepidToken asks the homeserver to send a validation token to an address
// (POST /register/email/requestToken, /account/3pid/email/requestToken,
// /account/password/email/requestToken).
type RequestThreepidToken struct {
	Purpose      string
	Medium       string
	Address      string
	ClientSecret string
	SendAttempt  int64
	NextLink     string
	// Send delivers the token of session sid to the (canonical) address. It is called
	// before anything is recorded, outside any transaction; when it fails nothing is.
	Send func(ctx context.Context, address, sid, token string) error
}

// ThreepidTokenRequested is the outcome of RequestThreepidToken.
type ThreepidTokenRequested struct {
	SID string
	// Sent is false when the request repeated a send attempt already made, and no
	// token was sent (spec: "send_attempt").
	Sent     bool
	Position eventlog.Position
}

// RequestThreepidToken checks the address against the purpose (free for registering or
// adding it, someone's for a password reset), then sends a fresh token and records the
// session with the token's hash. A request for the same address and client secret
// continues the pending session; with a send_attempt not above the last one it sends
// nothing.
func (c *Commands) RequestThreepidToken(ctx context.Context, meta Meta, req RequestThreepidToken) (ThreepidTokenRequested, error) {
	if req.Medium != MediumEmail {
		return ThreepidTokenRequested{}, ErrThreepidMediumNotSupported
	}
	if err := checkClientSecret(req.ClientSecret); err != nil {
		return ThreepidTokenRequested{}, err
	}
	address, err := CanonicalEmail(req.Address)
	if err != nil {
		return ThreepidTokenRequested{}, err
	}
	if req.NextLink != "" {
		u, err := url.Parse(req.NextLink)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(req.NextLink) > maxNextLinkLength {
			return ThreepidTokenRequested{}, badRequest("next_link must be an absolute http(s) URL")
		}
	}
	owner, err := c.threepidOwner(ctx, c.pool, req.Medium, address)
	if err != nil {
		return ThreepidTokenRequested{}, err
	}
	switch req.Purpose {
	case ThreepidPurposeRegister:
		if !c.cfg.RegistrationEnabled {
			return ThreepidTokenRequested{}, ErrRegistrationDisabled
		}
		if owner != "" {
			return ThreepidTokenRequested{}, ErrThreepidInUse
		}
	case ThreepidPurposeAdd:
		if owner != "" {
			return ThreepidTokenRequested{}, ErrThreepidInUse
		}
	case ThreepidPurposePasswordReset:
		if owner == "" {
			return ThreepidTokenRequested{}, ErrThreepidNotFound
		}
	default:
		return ThreepidTokenRequested{}, fmt.Errorf("request threepid token: unknown purpose %q", req.Purpose)
	}
	secretHash := tokens.Hash(req.ClientSecret)
	pending, err := c.q.ThreepidSessionFindPending(ctx, c.pool, writedb.ThreepidSessionFindPendingParams{
		ClientSecretHash: secretHash, Medium: req.Medium, Address: address, Purpose: req.Purpose,
	})
	found := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return ThreepidTokenRequested{}, err
	}
	if found && req.SendAttempt <= pending.SendAttempt {
		return ThreepidTokenRequested{SID: pending.Sid}, nil
	}
	sid, expect := tokens.Random(18), eventlog.NoStream
	if found {
		sid, expect = pending.Sid, eventlog.AnyVersion
	}
	token := tokens.Random(32)
	lifetime := c.cfg.ThreepidTokenLifetime
	if lifetime <= 0 {
		lifetime = defaultThreepidTokenLifetime
	}
	expires := c.now().Add(lifetime).UTC().Truncate(time.Millisecond)
	if err := req.Send(ctx, address, sid, token); err != nil {
		return ThreepidTokenRequested{}, fmt.Errorf("send validation token: %w", err)
	}
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		return []eventlog.NewEvent{{
			Stream: eventlog.ThreepidSessionStream(sid), Type: eventlog.TypeThreepidValidationRequested, ExpectVersion: expect,
			Data: eventlog.ThreepidValidationRequested{
				SID: sid, Medium: req.Medium, Address: address, Purpose: req.Purpose,
				ClientSecretHash: secretHash, TokenHash: tokens.Hash(token), SendAttempt: req.SendAttempt,
				ExpiresAt: expires, NextLink: req.NextLink,
			},
		}}, nil
	})
	if err != nil {
		return ThreepidTokenRequested{}, err
	}
	return ThreepidTokenRequested{SID: sid, Sent: true, Position: pos}, nil
}

// SubmitThreepidToken validates the session sid with the token that was sent (the link
// in the e-mail). It returns the session's next_link, if any. Submitting the right token
// again is not an error.
func (c *Commands) SubmitThreepidToken(ctx context.Context, meta Meta, sid, clientSecret, token string) (nextLink string, pos eventlog.Position, err error) {
	pos, err = c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		s, err := c.q.ThreepidSessionGet(ctx, tx, sid)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrNoValidSession
		}
		if err != nil {
			return nil, err
		}
		// One answer for an unknown session, a wrong secret and a wrong token: none
		// tells a guesser which part was right.
		secretOK := subtle.ConstantTimeCompare(s.ClientSecretHash, tokens.Hash(clientSecret)) == 1
		tokenOK := subtle.ConstantTimeCompare(s.TokenHash, tokens.Hash(token)) == 1
		if !secretOK || !tokenOK {
			return nil, ErrNoValidSession
		}
		if s.NextLink != nil {
			nextLink = *s.NextLink
		}
		if s.ValidatedAt != nil {
			return nil, nil
		}
		if !c.now().Before(s.ExpiresAt) {
			return nil, ErrThreepidSessionExpired
		}
		return []eventlog.NewEvent{{
			Stream: eventlog.ThreepidSessionStream(sid), Type: eventlog.TypeThreepidValidated, ExpectVersion: eventlog.AnyVersion,
			Data: eventlog.ThreepidValidated{SID: sid, Medium: s.Medium, Address: s.Address},
		}}, nil
	})
	return nextLink, pos, err
}

// validatedSession returns the session sid if clientSecret is its secret and it was
// validated recently enough to be used.
// The session must have been requested for purpose: an address validated to be added
// to an account does not reset the password of the account that owns it, nor register
// one.
func (c *Commands) validatedSession(ctx context.Context, db writedb.DBTX, sid, clientSecret, purpose string) (writedb.WritemodelThreepidSession, error) {
	s, err := c.q.ThreepidSessionGet(ctx, db, sid)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, fmt.Errorf("%w: no validation session matches sid and client_secret", ErrThreepidAuthFailed)
	}
	if err != nil {
		return s, err
	}
	if subtle.ConstantTimeCompare(s.ClientSecretHash, tokens.Hash(clientSecret)) != 1 {
		return s, fmt.Errorf("%w: no validation session matches sid and client_secret", ErrThreepidAuthFailed)
	}
	if s.Purpose != purpose {
		return s, fmt.Errorf("%w: the validation session was requested for another purpose", ErrThreepidAuthFailed)
	}
	if s.ValidatedAt == nil {
		return s, fmt.Errorf("%w: the address has not been validated yet (follow the link in the e-mail)", ErrThreepidAuthFailed)
	}
	if c.now().After(s.ValidatedAt.Add(validatedSessionLifetime)) {
		return s, fmt.Errorf("%w: the validation is too old: request a new token", ErrThreepidAuthFailed)
	}
	return s, nil
}

// threepidOwner returns the user the 3PID belongs to, or "".
func (c *Commands) threepidOwner(ctx context.Context, db writedb.DBTX, medium, address string) (string, error) {
	t, err := c.q.UserThreepidGet(ctx, db, writedb.UserThreepidGetParams{Medium: medium, Address: address})
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return t.UserID, nil
}

// threepidLoginUser returns the user a login's third-party identifier names, or "" when
// none does (m.id.thirdparty, m.id.phone).
func (c *Commands) threepidLoginUser(ctx context.Context, medium, address string) (string, error) {
	if medium == MediumEmail {
		canonical, err := CanonicalEmail(address)
		if err != nil {
			return "", nil
		}
		address = canonical
	}
	return c.threepidOwner(ctx, c.pool, medium, address)
}

// AddThreepid adds a validated 3PID to the user's account (POST /account/3pid/add).
type AddThreepid struct {
	UserID       string
	SID          string
	ClientSecret string
	Auth         *AuthDict
}

// AddThreepid checks the validation session first (so that a bad one fails at once,
// recording nothing), then re-authenticates the user (user-interactive authentication,
// m.login.password) and adds the session's address. An address that is already the
// user's is not an error; one of another user is.
func (c *Commands) AddThreepid(ctx context.Context, meta Meta, req AddThreepid) (eventlog.Position, error) {
	if err := checkClientSecret(req.ClientSecret); err != nil {
		return eventlog.Position{}, err
	}
	ok := c.checkUIAPassword(ctx, req.UserID, req.Auth)
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		s, err := c.validatedSession(ctx, tx, req.SID, req.ClientSecret, ThreepidPurposeAdd)
		if err != nil {
			return nil, err
		}
		// Read the address's version before its owner: an add that commits between the
		// two makes this append conflict, and the retry sees the new owner.
		version, err := eventlog.StreamVersion(ctx, tx, eventlog.ThreepidStream(s.Medium, s.Address))
		if err != nil {
			return nil, err
		}
		owner, err := c.threepidOwner(ctx, tx, s.Medium, s.Address)
		if err != nil {
			return nil, err
		}
		if owner != "" && owner != req.UserID {
			return nil, ErrThreepidInUse
		}
		flows, err := c.reauthFlows(ctx, tx, req.UserID)
		if err != nil {
			return nil, err
		}
		events, _, err := c.uia(ctx, tx, uiaRequest{kind: "add_threepid", operation: req.SID, userID: req.UserID, flows: flows,
			auth: req.Auth, passwordOK: ok}, noOtherStages)
		if err != nil || owner == req.UserID {
			return events, err
		}
		return append(events, threepidAdded(req.UserID, s, version)), nil
	})
}

// threepidAdded is the event of s's address added to the user; version is the
// address stream's version read before its owner was checked.
func threepidAdded(userID string, s writedb.WritemodelThreepidSession, version int64) eventlog.NewEvent {
	return eventlog.NewEvent{
		Stream: eventlog.ThreepidStream(s.Medium, s.Address), Type: eventlog.TypeThreepidAdded, ExpectVersion: version,
		Data: eventlog.ThreepidAdded{UserID: userID, Medium: s.Medium, Address: s.Address, ValidatedAt: *s.ValidatedAt, SID: s.Sid},
	}
}

// RemoveThreepid removes a 3PID from the user's account (POST /account/3pid/delete). A
// 3PID the user does not have is not an error: removing twice removes once. removed
// says whether it was the user's.
func (c *Commands) RemoveThreepid(ctx context.Context, meta Meta, userID, medium, address string) (pos eventlog.Position, removed bool, err error) {
	switch medium {
	case MediumEmail:
		if address, err = CanonicalEmail(address); err != nil {
			return pos, false, err
		}
	case MediumMSISDN:
	default:
		return pos, false, badRequest("medium must be email or msisdn")
	}
	pos, err = c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		owner, err := c.threepidOwner(ctx, tx, medium, address)
		if err != nil || owner != userID {
			return nil, err
		}
		removed = true
		return []eventlog.NewEvent{{
			Stream: eventlog.ThreepidStream(medium, address), Type: eventlog.TypeThreepidRemoved, ExpectVersion: eventlog.AnyVersion,
			Data: eventlog.ThreepidRemoved{UserID: userID, Medium: medium, Address: address},
		}}, nil
	})
	return pos, removed, err
}

// emailStage is the m.login.email.identity stage of uiaSession: the credentials must
// name a validated session that no other user-interactive authentication used. It
// returns the session and the event that marks it used.
func (c *Commands) emailStage(ctx context.Context, tx pgx.Tx, auth *AuthDict, uiaSession, purpose string) (writedb.WritemodelThreepidSession, eventlog.NewEvent, error) {
	var used eventlog.NewEvent
	if auth.ThreepidSID == "" || auth.ThreepidClientSecret == "" {
		return writedb.WritemodelThreepidSession{}, used, badRequest("threepid_creds with sid and client_secret are required")
	}
	s, err := c.validatedSession(ctx, tx, auth.ThreepidSID, auth.ThreepidClientSecret, purpose)
	if err != nil {
		return s, used, err
	}
	if s.UsedByUia != nil && *s.UsedByUia != uiaSession {
		return s, used, fmt.Errorf("%w: the validation session was already used", ErrThreepidAuthFailed)
	}
	used = eventlog.NewEvent{
		Stream: eventlog.ThreepidSessionStream(s.Sid), Type: eventlog.TypeThreepidSessionUsed, ExpectVersion: eventlog.AnyVersion,
		Data: eventlog.ThreepidSessionUsed{SID: s.Sid, UIASession: uiaSession},
	}
	return s, used, nil
}

// withEmailStage returns the registration flow with m.login.email.identity first when
// registration requires an e-mail address: it replaces m.login.dummy, and comes before
// m.login.registration_token (which must stay the last stage: its token is recorded when
// the account is created).
func (c *Commands) withEmailStage(flow []string) []string {
	if !c.cfg.RegistrationRequiresEmail {
		return flow
	}
	if len(flow) == 1 && flow[0] == StageDummy {
		return []string{StageEmailIdentity}
	}
	return append([]string{StageEmailIdentity}, flow...)
}

// registrationEmail carries a registration's m.login.email.identity stage from the
// stage check to the account's creation.
type registrationEmail struct {
	c       *Commands
	session *writedb.WritemodelThreepidSession // validated in this request
	used    []eventlog.NewEvent
}

// check is the stage check: the session must be validated and its address free.
func (r *registrationEmail) check(ctx context.Context, tx pgx.Tx, auth *AuthDict, done *eventlog.UIAStageCompleted) error {
	s, used, err := r.c.emailStage(ctx, tx, auth, done.Session, ThreepidPurposeRegister)
	if err != nil {
		return err
	}
	owner, err := r.c.threepidOwner(ctx, tx, s.Medium, s.Address)
	if err != nil {
		return err
	}
	if owner != "" {
		return ErrThreepidInUse
	}
	r.session, r.used = &s, []eventlog.NewEvent{used}
	return nil
}

// added returns the event adding the validated address to the new account, when
// registration requires one: the session of this request's stage, or the one an earlier
// request of the UIA session used.
func (r *registrationEmail) added(ctx context.Context, tx pgx.Tx, userID, uiaSession string) ([]eventlog.NewEvent, error) {
	if !r.c.cfg.RegistrationRequiresEmail {
		return nil, nil
	}
	s := r.session
	if s == nil {
		row, err := r.c.q.ThreepidSessionByUIA(ctx, tx, &uiaSession)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("%w: no validated e-mail address for this registration", ErrThreepidAuthFailed)
		}
		if err != nil {
			return nil, err
		}
		s = &writedb.WritemodelThreepidSession{Sid: row.Sid, Medium: row.Medium, Address: row.Address, ValidatedAt: row.ValidatedAt}
	}
	version, err := eventlog.StreamVersion(ctx, tx, eventlog.ThreepidStream(s.Medium, s.Address))
	if err != nil {
		return nil, err
	}
	owner, err := r.c.threepidOwner(ctx, tx, s.Medium, s.Address)
	if err != nil {
		return nil, err
	}
	if owner != "" {
		return nil, ErrThreepidInUse
	}
	return []eventlog.NewEvent{threepidAdded(userID, *s, version)}, nil
}

// ResetPassword sets a new password for the account that owns a validated e-mail
// address (POST /account/password without an access token, m.login.email.identity).
type ResetPassword struct {
	NewPassword   string
	LogoutDevices bool
	Auth          *AuthDict
}

// ResetPassword runs the one-stage flow m.login.email.identity; the account is the one
// the validated address belongs to. Unless LogoutDevices is false every device of the
// account is logged out.
func (c *Commands) ResetPassword(ctx context.Context, meta Meta, req ResetPassword) (eventlog.Position, error) {
	if req.NewPassword == "" {
		return eventlog.Position{}, badRequest("new_password must not be empty")
	}
	if len(req.NewPassword) > maxPasswordLength {
		return eventlog.Position{}, badRequest("password too long")
	}
	// Hash (slow, and anyone may call this) only once the credentials name a validated
	// session; the transaction checks them again.
	var hash string
	if req.Auth != nil && req.Auth.Type == StageEmailIdentity {
		if _, err := c.validatedSession(ctx, c.pool, req.Auth.ThreepidSID, req.Auth.ThreepidClientSecret, ThreepidPurposePasswordReset); err == nil {
			hash = c.hashPassword(req.NewPassword)
		}
	}
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		var userID string
		var used []eventlog.NewEvent
		events, _, err := c.uia(ctx, tx, uiaRequest{kind: "password_reset", flows: [][]string{{StageEmailIdentity}}, auth: req.Auth},
			func(stage string, done *eventlog.UIAStageCompleted) error {
				if stage != StageEmailIdentity {
					return badRequest("stage %q is not supported here", stage)
				}
				s, usedEvent, err := c.emailStage(ctx, tx, req.Auth, done.Session, ThreepidPurposePasswordReset)
				if err != nil {
					return err
				}
				owner, err := c.threepidOwner(ctx, tx, s.Medium, s.Address)
				if err != nil {
					return err
				}
				if owner == "" {
					return ErrThreepidNotFound
				}
				u, err := c.q.UserGet(ctx, tx, owner)
				if err != nil {
					return err
				}
				if u.Deactivated {
					return ErrUserDeactivated
				}
				userID, used = owner, []eventlog.NewEvent{usedEvent}
				return nil
			})
		events = append(events, used...)
		if err != nil {
			return events, err
		}
		if hash == "" {
			// Validated between the check before the transaction and this one: the
			// client tries again, and is hashed then.
			return nil, fmt.Errorf("%w: the validation session changed meanwhile; try again", ErrThreepidAuthFailed)
		}
		events = append(events, eventlog.NewEvent{
			Stream: eventlog.UserStream(userID), Type: eventlog.TypePasswordChanged, ExpectVersion: eventlog.AnyVersion,
			Data: eventlog.PasswordChanged{UserID: userID, PasswordHash: hash},
		})
		if req.LogoutDevices {
			events = append(events, eventlog.NewEvent{
				Stream: eventlog.UserStream(userID), Type: eventlog.TypeAllDevicesLoggedOut, ExpectVersion: eventlog.AnyVersion,
				Data: eventlog.AllDevicesLoggedOut{UserID: userID},
			})
		}
		return events, nil
	})
}
