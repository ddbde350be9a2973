package commands

import (
	"context"
	"errors"
	"slices"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/tokens"
)

// UIA stage types (spec: client-server API, "Authentication types").
const (
	StageDummy             = "m.login.dummy"
	StagePassword          = "m.login.password"
	StageRegistrationToken = "m.login.registration_token"
	StageTerms             = "m.login.terms"
)

// AuthDict is the `auth` object of a user-interactive authentication request.
type AuthDict struct {
	Type    string
	Session string
	// Token is the registration token (m.login.registration_token).
	Token string
	// User and Password are an m.login.password stage's m.id.user identifier and
	// password.
	User     string
	Password string
	// ThreepidSID and ThreepidClientSecret are an m.login.email.identity stage's
	// threepid_creds.
	ThreepidSID          string
	ThreepidClientSecret string
}

// uiaRequest is one request of a user-interactive authentication (spec: client-server
// API, "User-interactive authentication API"): which operation it authorises, for whom,
// with which flows.
type uiaRequest struct {
	kind string
	// operation names what exactly is authorised (e.g. the devices to delete): a
	// session started for one operation cannot complete another.
	operation string
	userID    string // empty for registration
	flows     [][]string
	params    map[string]any
	auth      *AuthDict
	// passwordOK says whether an m.login.password stage's password was right; it is
	// checked before the transaction because hashing is slow.
	passwordOK bool
}

// uia runs one step of user-interactive authentication in tx. It returns the events
// that record it (a new session, a completed stage) and whether every stage of a flow
// is now complete. When not, the error is an *AuthRequiredError for the client (its
// Cause set when the submitted stage failed); the events must still be committed.
// check validates stages other than m.login.dummy and m.login.password and may add to
// the stage's event (e.g. the registration token used).
func (c *Commands) uia(ctx context.Context, tx pgx.Tx, r uiaRequest,
	check func(stage string, done *eventlog.UIAStageCompleted) error) ([]eventlog.NewEvent, *eventlog.UIAStageCompleted, error) {
	var events []eventlog.NewEvent
	var session string
	var completed []string
	// A registration session is stored only when a stage completes (see uia_session.go).
	lazy := r.kind == "register" && r.userID == ""
	stored, opChanged := false, false
	if r.auth != nil && r.auth.Session != "" {
		s, err := c.q.UIASessionGet(ctx, tx, r.auth.Session)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if !lazy || !c.signedSessionValid(r.kind, r.auth.Session) {
				return nil, nil, ErrUnknownSession
			}
			session = r.auth.Session
		case err != nil:
			return nil, nil, err
		default:
			owner := ""
			if s.UserID != nil {
				owner = *s.UserID
			}
			if s.Kind != r.kind || owner != r.userID || s.Done || c.now().Sub(s.CreatedAt) > sessionLifetime {
				return nil, nil, ErrUnknownSession
			}
			opChanged = s.Operation != r.operation
			session, completed, stored = s.Session, s.Completed, true
		}
	} else if lazy {
		session = c.newSignedSession(r.kind)
	} else {
		session = tokens.Random(18)
	}
	if !stored && !lazy {
		events = append(events, eventlog.NewEvent{
			Stream: eventlog.UIAStream(session), Type: eventlog.TypeUIASessionStarted, ExpectVersion: eventlog.NoStream,
			Data: eventlog.UIASessionStarted{Session: session, Kind: r.kind, UserID: r.userID, Operation: r.operation},
		})
	}
	challenge := func(completed []string, cause error) error {
		params := r.params
		if params == nil {
			params = map[string]any{}
		}
		return &AuthRequiredError{Session: session, Flows: r.flows, Params: params,
			Completed: completed, Cause: cause}
	}
	if opChanged {
		// Spec-shaped: the 401 of user-interactive authentication, with the reason.
		return nil, nil, challenge(completed, ErrUIAOperationChanged)
	}
	if r.auth == nil || r.auth.Type == "" || r.auth.Type == StageSSO {
		// A session whose last stage was completed out of band (m.login.sso, through
		// its fallback page) is resubmitted with its session alone; m.login.sso cannot
		// be completed otherwise, so submitting it means the same.
		if stored && slices.ContainsFunc(r.flows, func(f []string) bool { return slices.Equal(f, completed) }) {
			return []eventlog.NewEvent{sessionCompleted(session)}, &eventlog.UIAStageCompleted{Session: session}, nil
		}
		return events, nil, challenge(completed, nil)
	}
	// The submitted stage must be the next one of a flow that begins with the stages
	// completed so far.
	next := false
	for _, f := range r.flows {
		if len(f) > len(completed) && slices.Equal(f[:len(completed)], completed) && f[len(completed)] == r.auth.Type {
			next = true
		}
	}
	if !next {
		return events, nil, challenge(completed, badRequest("stage %q is not the next stage of any flow", r.auth.Type))
	}
	done := &eventlog.UIAStageCompleted{Session: session, Stage: r.auth.Type}
	switch r.auth.Type {
	case StageDummy:
	case StagePassword:
		if !r.passwordOK {
			return events, nil, challenge(completed, ErrInvalidCredentials)
		}
	default:
		if err := check(r.auth.Type, done); err != nil {
			return events, nil, challenge(completed, err)
		}
	}
	if lazy && !stored {
		// The session's first completed stage: now it is worth storing.
		events = append(events, eventlog.NewEvent{
			Stream: eventlog.UIAStream(session), Type: eventlog.TypeUIASessionStarted, ExpectVersion: eventlog.NoStream,
			Data: eventlog.UIASessionStarted{Session: session, Kind: r.kind, UserID: r.userID, Operation: r.operation},
		})
	}
	events = append(events, eventlog.NewEvent{
		Stream: eventlog.UIAStream(session), Type: eventlog.TypeUIAStageCompleted, Data: *done, ExpectVersion: eventlog.AnyVersion,
	})
	completed = append(slices.Clone(completed), r.auth.Type)
	for _, f := range r.flows {
		if slices.Equal(f, completed) {
			return append(events, sessionCompleted(session)), done, nil
		}
	}
	return events, nil, challenge(completed, nil)
}

// checkUIAPassword verifies an m.login.password stage for userID, outside any
// transaction. The identifier must name the user the session is for.
func (c *Commands) checkUIAPassword(ctx context.Context, userID string, auth *AuthDict) bool {
	if auth == nil || auth.Type != StagePassword {
		return false
	}
	if auth.User != "" && c.resolveUser(auth.User) != userID {
		c.checkPassword(dummyHash, auth.Password)
		return false
	}
	u, err := c.q.UserGet(ctx, c.pool, userID)
	if err != nil || u.PasswordHash == nil {
		c.checkPassword(dummyHash, auth.Password)
		return false
	}
	return c.checkPassword(*u.PasswordHash, auth.Password)
}

// sessionCompleted ends a session whose flow is complete: it authorises one operation.
func sessionCompleted(session string) eventlog.NewEvent {
	return eventlog.NewEvent{
		Stream: eventlog.UIAStream(session), Type: eventlog.TypeUIASessionCompleted, ExpectVersion: eventlog.AnyVersion,
		Data: eventlog.UIASessionCompleted{Session: session},
	}
}
