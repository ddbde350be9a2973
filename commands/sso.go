package commands

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/mxid"
	"spelt.dev/spelt/internal/tokens"
	"spelt.dev/spelt/sql/gen/writedb"
)

// StageSSO is the m.login.sso stage of user-interactive authentication, completed
// through its fallback page (spec: client-server API, "SSO during User-Interactive
// Authentication").
const StageSSO = "m.login.sso"

// Errors of single sign-on.
var (
	// ErrSSODisabled: no identity provider is configured.
	ErrSSODisabled = errors.New("single sign-on is not configured")
	// ErrUnknownIdP: no identity provider has this ID.
	ErrUnknownIdP = errors.New("unknown identity provider")
	// ErrUnknownSSOLogin: the callback's state names no login in flight (forged,
	// expired, already used) or comes from another browser.
	ErrUnknownSSOLogin = errors.New("unknown, expired or already used single sign-on login")
	// ErrSSORefused: the identity provider refused the login, or its answer failed
	// verification (code exchange, ID token signature, issuer, audience, nonce, expiry).
	ErrSSORefused = errors.New("the identity provider's answer was refused")
	// ErrSSOUnavailable: the identity provider could not be reached.
	ErrSSOUnavailable = errors.New("the identity provider is unavailable")
	// ErrSSONotLinked: the identity is not the one linked to the account being
	// re-authenticated.
	ErrSSONotLinked = errors.New("this identity does not belong to the account")
)

// IdentityProviders is the OpenID Connect relying party as commands use it. Its calls
// may go over the network: commands make them outside any transaction.
type IdentityProviders interface {
	// Has reports whether an identity provider with this ID is configured.
	Has(idp string) bool
	// AllowsExistingUsers reports whether an identity of idp logging in for the first
	// time may take over the existing account its username names.
	AllowsExistingUsers(idp string) bool
	// AuthCodeURL returns where to send the browser to log in at idp for the login
	// with this state (discovering the provider if need be). It wraps
	// ErrSSOUnavailable when the provider cannot be reached.
	AuthCodeURL(ctx context.Context, idp, state string) (string, error)
	// Exchange redeems the authorization code of the login with this state and
	// verifies the ID token. It wraps ErrSSORefused when the answer is not
	// acceptable and ErrSSOUnavailable when the provider cannot be reached.
	Exchange(ctx context.Context, idp, state, code string) (SSOIdentity, error)
}

// SSOIdentity is who the identity provider says the user is.
type SSOIdentity struct {
	// Subject is the provider's stable identifier of the user (the ID token's sub).
	Subject string
	// Username and DisplayName are the provider's localpart and display-name claims;
	// either may be empty.
	Username    string
	DisplayName string
}

// UseIdentityProviders enables single sign-on with the configured providers. It is
// called once, before the server serves.
func (c *Commands) UseIdentityProviders(p IdentityProviders) { c.idps = p }

// ssoLoginLifetime is how long a user has at the identity provider.
const ssoLoginLifetime = 15 * time.Minute

// ssoLoginTokenLifetime is the lifetime of the login token handed to the client after
// SSO. The user first confirms, on a page of ours, that the client at redirectUrl may
// have their session, so it must outlast a human click.
const ssoLoginTokenLifetime = 2 * time.Minute

// maxRedirectURLLength bounds the client's redirectUrl, which is stored in the log.
const maxRedirectURLLength = 2048

// StartSSO starts a login at an identity provider: for a client login
// (GET /login/sso/redirect, RedirectURL set) or to complete the m.login.sso stage of a
// user-interactive authentication session (its fallback page, UIASession set).
type StartSSO struct {
	IdP         string
	RedirectURL string
	UIASession  string
}

// SSOStarted says where to send the browser, and the cookie that binds the login to it.
type SSOStarted struct {
	AuthURL string
	// State is the login's OAuth 2.0 state; BrowserKey the value of the cookie to set.
	State      string
	BrowserKey string
	ExpiresIn  time.Duration
	Position   eventlog.Position
}

// StartSSO records a login in flight and returns the identity provider's authorization
// URL.
//
// The login's state must survive a restart and be finished by any process, once: it is
// an event and a write-model row, keyed by the SHA-256 of the state. The OpenID Connect
// nonce and the PKCE code verifier are not stored at all: the relying party derives
// them from the state with a server secret (IdentityProviders), so the log holds
// nothing that finishes a login, and a cookie set on the browser (stored as a hash)
// ties the callback to the browser that started it, as the spec recommends.
func (c *Commands) StartSSO(ctx context.Context, meta Meta, req StartSSO) (SSOStarted, error) {
	if c.idps == nil {
		return SSOStarted{}, ErrSSODisabled
	}
	if !c.idps.Has(req.IdP) {
		return SSOStarted{}, ErrUnknownIdP
	}
	if req.UIASession == "" {
		if err := checkRedirectURL(req.RedirectURL); err != nil {
			return SSOStarted{}, err
		}
	}
	state := tokens.Random(32)
	browserKey := tokens.Random(32)
	// Discovery may go over the network: before the transaction.
	authURL, err := c.idps.AuthCodeURL(ctx, req.IdP, state)
	if err != nil {
		return SSOStarted{}, err
	}
	stateHash := tokens.Hash(state)
	expires := c.now().Add(ssoLoginLifetime).UTC().Truncate(time.Millisecond)
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		started := eventlog.SSOLoginStarted{StateHash: stateHash, IdP: req.IdP, RedirectURL: req.RedirectURL,
			BrowserHash: tokens.Hash(browserKey), ExpiresAt: expires}
		if req.UIASession != "" {
			userID, err := c.ssoUIAUser(ctx, tx, req.UIASession)
			if err != nil {
				return nil, err
			}
			linked, err := c.q.SSOIdentityListByUser(ctx, tx, userID)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(linked, req.IdP) {
				return nil, ErrSSONotLinked
			}
			started.RedirectURL, started.UIASession, started.UserID = "", req.UIASession, userID
		}
		return []eventlog.NewEvent{{
			Stream: eventlog.SSOLoginStream(stateHash), Type: eventlog.TypeSSOLoginStarted, ExpectVersion: eventlog.NoStream,
			Data: started,
		}}, nil
	})
	if err != nil {
		return SSOStarted{}, err
	}
	return SSOStarted{AuthURL: authURL, State: state, BrowserKey: browserKey, ExpiresIn: ssoLoginLifetime, Position: pos}, nil
}

// ssoUIAUser returns the user of a user-interactive authentication session that an
// m.login.sso stage may complete: a session of a logged-in user, not yet done.
func (c *Commands) ssoUIAUser(ctx context.Context, db writedb.DBTX, session string) (string, error) {
	s, err := c.q.UIASessionGet(ctx, db, session)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrUnknownSession
	}
	if err != nil {
		return "", err
	}
	if s.UserID == nil || s.Done {
		return "", ErrUnknownSession
	}
	return *s.UserID, nil
}

// checkRedirectURL accepts an absolute URL to send the browser back to with a login
// token: a web client's https URL or a native app's own scheme, but nothing a browser
// would run as a script.
func checkRedirectURL(s string) error {
	if s == "" {
		return badRequest("redirectUrl is required")
	}
	if len(s) > maxRedirectURLLength {
		return badRequest("redirectUrl is longer than %d bytes", maxRedirectURLLength)
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "" && u.Path == "") {
		return badRequest("redirectUrl is not an absolute URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "javascript", "data", "vbscript", "file", "blob":
		return badRequest("redirectUrl may not use the %s scheme", u.Scheme)
	}
	return nil
}

// FinishSSO is the identity provider's callback: the state and code it sent the
// browser back with (or its error), and the browser's cookie.
type FinishSSO struct {
	State      string
	Code       string
	IdPError   string
	BrowserKey string
}

// SSOFinished says what the finished login was for.
type SSOFinished struct {
	UserID string
	// RedirectURL is the client's redirectUrl with the loginToken added (login); empty
	// when the login completed a user-interactive authentication stage.
	RedirectURL string
	// UIASession is the session whose m.login.sso stage is now complete.
	UIASession string
	Position   eventlog.Position
}

// FinishSSO verifies the identity provider's answer and finishes the login: it maps
// the provider's subject to an account (creating the account on its first login),
// issues a login token and returns the redirectUrl to send the browser to; or it
// completes the m.login.sso stage of the user-interactive authentication session the
// login was started for. A refused answer appends nothing.
func (c *Commands) FinishSSO(ctx context.Context, meta Meta, req FinishSSO) (SSOFinished, error) {
	if c.idps == nil {
		return SSOFinished{}, ErrSSODisabled
	}
	if req.State == "" {
		return SSOFinished{}, ErrUnknownSSOLogin
	}
	stateHash := tokens.Hash(req.State)
	// A first look outside the transaction: the code exchange goes over the network
	// and must not run while a transaction holds back the log's readers.
	pending, err := c.pendingSSOLogin(ctx, c.pool, stateHash, req.BrowserKey)
	if err != nil {
		return SSOFinished{}, err
	}
	if req.IdPError != "" {
		return SSOFinished{}, fmt.Errorf("%w: %s", ErrSSORefused, req.IdPError)
	}
	if req.Code == "" {
		return SSOFinished{}, fmt.Errorf("%w: no code", ErrSSORefused)
	}
	id, err := c.idps.Exchange(ctx, pending.Idp, req.State, req.Code)
	if err != nil {
		return SSOFinished{}, err
	}
	if id.Subject == "" {
		return SSOFinished{}, fmt.Errorf("%w: no subject", ErrSSORefused)
	}
	token := tokens.NewLoginToken()
	var out SSOFinished
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		// Again in the transaction: the finished event expects the stream at version 1
		// (started), so of two concurrent callbacks one fails and, retried, finds the
		// login finished.
		p, err := c.pendingSSOLogin(ctx, tx, stateHash, req.BrowserKey)
		if err != nil {
			return nil, err
		}
		linked, err := c.q.SSOIdentityGet(ctx, tx, writedb.SSOIdentityGetParams{Idp: p.Idp, Subject: id.Subject})
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, err
		}
		var events []eventlog.NewEvent
		out = SSOFinished{}
		if p.UiaSession != nil {
			// Re-authentication: the identity must be the one linked to the session's user.
			userID, err := c.ssoUIAUser(ctx, tx, *p.UiaSession)
			if err != nil {
				return nil, err
			}
			if linked == "" || p.UserID == nil || linked != userID || *p.UserID != userID {
				return nil, ErrSSONotLinked
			}
			out.UserID, out.UIASession = userID, *p.UiaSession
			events = append(events, eventlog.NewEvent{
				Stream: eventlog.UIAStream(out.UIASession), Type: eventlog.TypeUIAStageCompleted, ExpectVersion: eventlog.AnyVersion,
				Data: eventlog.UIAStageCompleted{Session: out.UIASession, Stage: StageSSO},
			})
		} else {
			userID := linked
			if userID == "" && c.idps.AllowsExistingUsers(p.Idp) {
				// First login of this identity, allowed to take over the account of the
				// same name when there is one.
				if userID, events, err = c.ssoLinkExisting(ctx, tx, p.Idp, id); err != nil {
					return nil, err
				}
			}
			if userID == "" {
				// First login of this identity: a new account.
				userID, events, err = c.ssoRegister(ctx, tx, p.Idp, id)
				if err != nil {
					return nil, err
				}
			} else if events == nil {
				// Linked before: the account must still be active.
				u, err := c.q.UserGet(ctx, tx, userID)
				if err != nil {
					return nil, err
				}
				if u.Deactivated {
					return nil, ErrUserDeactivated
				}
			}
			expires := c.now().Add(ssoLoginTokenLifetime).UTC().Truncate(time.Millisecond)
			events = append(events, loginTokenIssued(userID, token, expires))
			out.UserID = userID
			if p.RedirectUrl != nil {
				out.RedirectURL = withLoginToken(*p.RedirectUrl, token)
			}
		}
		return append(events, eventlog.NewEvent{
			Stream: eventlog.SSOLoginStream(stateHash), Type: eventlog.TypeSSOLoginFinished, ExpectVersion: 1,
			Data: eventlog.SSOLoginFinished{StateHash: stateHash, UserID: out.UserID},
		}), nil
	})
	if err != nil {
		return SSOFinished{}, err
	}
	out.Position = pos
	return out, nil
}

// pendingSSOLogin returns the login in flight with this state hash, if it is unused,
// unexpired and was started by the browser holding browserKey.
func (c *Commands) pendingSSOLogin(ctx context.Context, db writedb.DBTX, stateHash []byte, browserKey string) (writedb.WritemodelSsoLogin, error) {
	p, err := c.q.SSOLoginGet(ctx, db, stateHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, ErrUnknownSSOLogin
	}
	if err != nil {
		return p, err
	}
	if p.Finished || !c.now().Before(p.ExpiresAt) || browserKey == "" ||
		subtle.ConstantTimeCompare(tokens.Hash(browserKey), p.BrowserHash) != 1 {
		return p, ErrUnknownSSOLogin
	}
	if !c.idps.Has(p.Idp) {
		// The provider was removed from the configuration meanwhile.
		return p, ErrUnknownIdP
	}
	return p, nil
}

// ssoLinkExisting links an identity to the existing account its username names, if
// there is one ("" otherwise). Guest accounts are not taken over.
func (c *Commands) ssoLinkExisting(ctx context.Context, tx pgx.Tx, idp string, id SSOIdentity) (string, []eventlog.NewEvent, error) {
	userID := mxid.UserID(ssoLocalpart(id.Username, c.cfg.ServerName), c.cfg.ServerName)
	u, err := c.q.UserGet(ctx, tx, userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	if u.IsGuest {
		return "", nil, nil
	}
	if u.Deactivated {
		return "", nil, ErrUserDeactivated
	}
	return userID, []eventlog.NewEvent{{
		Stream: eventlog.SSOIdentityStream(idp, id.Subject), Type: eventlog.TypeSSOIdentityLinked, ExpectVersion: eventlog.NoStream,
		Data: eventlog.SSOIdentityLinked{IdP: idp, Subject: id.Subject, UserID: userID, DisplayName: id.DisplayName},
	}}, nil
}

// maxLocalpartTries bounds the numbers tried after a localpart that is taken.
const maxLocalpartTries = 1000

// ssoRegister creates the account of an identity's first login: its localpart is the
// provider's username claim mapped onto the localpart grammar (appendices, "Mapping from
// other character sets"), with a number appended when that is taken (Synapse does the
// same), and the identity is linked to it. The account has no password.
func (c *Commands) ssoRegister(ctx context.Context, tx pgx.Tx, idp string, id SSOIdentity) (string, []eventlog.NewEvent, error) {
	base := ssoLocalpart(id.Username, c.cfg.ServerName)
	lp := ""
	for i := 0; i < maxLocalpartTries; i++ {
		candidate := base
		if i > 0 {
			candidate += strconv.Itoa(i)
		}
		err := c.checkLocalpart(ctx, tx, candidate)
		if err == nil && c.reservedFor(mxid.UserID(candidate, c.cfg.ServerName), "") != nil {
			err = ErrUserInUse // an application service's: try the next number
		}
		if err == nil {
			lp = candidate
			break
		}
		if !errors.Is(err, ErrUserInUse) {
			return "", nil, err
		}
	}
	if lp == "" {
		return "", nil, ErrUserInUse
	}
	userID := mxid.UserID(lp, c.cfg.ServerName)
	// Both streams must be new: a concurrent first login of the same identity, or
	// another registration of the localpart, makes the append fail and the command
	// run again, which then finds the link or the next free number.
	events := []eventlog.NewEvent{
		{
			Stream: eventlog.UserStream(userID), Type: eventlog.TypeAccountRegistered, ExpectVersion: eventlog.NoStream,
			Data: eventlog.AccountRegistered{UserID: userID, Localpart: lp},
		},
		{
			Stream: eventlog.SSOIdentityStream(idp, id.Subject), Type: eventlog.TypeSSOIdentityLinked, ExpectVersion: eventlog.NoStream,
			Data: eventlog.SSOIdentityLinked{IdP: idp, Subject: id.Subject, UserID: userID, DisplayName: id.DisplayName},
		},
	}
	if id.DisplayName != "" && len(id.DisplayName) <= maxDisplaynameLength {
		// The new account's display name is the provider's, as in Synapse.
		name := id.DisplayName
		events = append(events, eventlog.NewEvent{Stream: eventlog.ProfileStream(userID), Type: eventlog.TypeProfileChanged,
			ExpectVersion: eventlog.AnyVersion, Data: eventlog.ProfileChanged{UserID: userID, Field: "displayname", Value: &name}})
	}
	return userID, events, nil
}

// ssoMaxLocalpart leaves room for a number after a localpart taken from a claim.
const ssoMaxLocalpart = 64

// ssoLocalpart maps the provider's username onto a valid localpart: "user" when there
// is none, and a "u" prefix where the mapped name is reserved (all digits, a leading
// "_").
func ssoLocalpart(username, server string) string {
	lp := mxid.MapLocalpart(username)
	if len(lp) > ssoMaxLocalpart {
		lp = lp[:ssoMaxLocalpart]
		// Do not leave half of an "=xx" escape.
		if i := strings.LastIndexByte(lp, '='); i >= len(lp)-2 {
			lp = lp[:i]
		}
	}
	switch err := mxid.ValidateLocalpart(lp, server); {
	case err == nil:
		return lp
	case errors.Is(err, mxid.ErrEmpty):
		return "user"
	case errors.Is(err, mxid.ErrNumeric), errors.Is(err, mxid.ErrReserved):
		return "u" + lp
	default:
		return "user"
	}
}

// withLoginToken adds loginToken to the client's redirectUrl, replacing any it has
// (spec: client-server API, "Handling the callback from the Authentication server").
func withLoginToken(redirectURL, token string) string {
	u, err := url.Parse(redirectURL)
	if err != nil {
		return redirectURL // checked when the login started
	}
	q := u.Query()
	q.Del("loginToken")
	q.Set("loginToken", token)
	u.RawQuery = q.Encode()
	return u.String()
}

// reauthFlows are the flows that re-authenticate a logged-in user, as Synapse offers
// them: m.login.password when the account has a password, m.login.sso when it has an
// identity at a configured identity provider, and m.login.password when it has
// neither (it then fails, rather than offering nothing).
func (c *Commands) reauthFlows(ctx context.Context, db writedb.DBTX, userID string) ([][]string, error) {
	if c.idps == nil {
		return passwordFlows, nil
	}
	var flows [][]string
	u, err := c.q.UserGet(ctx, db, userID)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	if err == nil && u.PasswordHash != nil {
		flows = append(flows, []string{StagePassword})
	}
	idps, err := c.q.SSOIdentityListByUser(ctx, db, userID)
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(idps, c.idps.Has) {
		flows = append(flows, []string{StageSSO})
	}
	if len(flows) == 0 {
		return passwordFlows, nil
	}
	return flows, nil
}

// completedOutOfBand reports whether auth resubmits a session whose stages may have been
// completed out of band (through the m.login.sso fallback): the session alone, or with
// type m.login.sso. Slow work done only for authenticated requests (hashing a new
// password) must be done for these too.
func completedOutOfBand(auth *AuthDict) bool {
	return auth != nil && auth.Session != "" && (auth.Type == "" || auth.Type == StageSSO)
}
