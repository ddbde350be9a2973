package commands

import (
	"context"
	"time"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/writedb"
)

// ssoLoginForgetAfter is how long after its expiry an SSO login's row is kept. An expired
// login fails either way; forgetting it only keeps the table small.
const ssoLoginForgetAfter = time.Hour

// applySSOWriteModel derives the single sign-on write-model rows of one event, and the
// end of user-interactive authentication sessions (applyWriteModel calls it for every
// event). Times come from the events alone.
func applySSOWriteModel(ctx context.Context, b *pgbatch.DB, q *writedb.Queries, e eventlog.Event) error {
	switch e.Type {
	case eventlog.TypeSSOLoginStarted:
		var d eventlog.SSOLoginStarted
		if err := e.Decode(&d); err != nil {
			return err
		}
		// Each new login forgets the logins that expired long before it was recorded:
		// deterministic, since the time is the event's.
		if err := q.SSOLoginDeleteExpired(ctx, b, e.RecordedAt.Add(-ssoLoginForgetAfter)); err != nil {
			return err
		}
		return q.SSOLoginInsert(ctx, b, writedb.SSOLoginInsertParams{
			StateHash: d.StateHash, Idp: d.IdP, RedirectUrl: optional(d.RedirectURL), UiaSession: optional(d.UIASession),
			UserID: optional(d.UserID), BrowserHash: d.BrowserHash, ExpiresAt: d.ExpiresAt,
		})
	case eventlog.TypeSSOLoginFinished:
		var d eventlog.SSOLoginFinished
		if err := e.Decode(&d); err != nil {
			return err
		}
		return q.SSOLoginFinish(ctx, b, d.StateHash)
	case eventlog.TypeSSOIdentityLinked:
		var d eventlog.SSOIdentityLinked
		if err := e.Decode(&d); err != nil {
			return err
		}
		return q.SSOIdentityInsert(ctx, b, writedb.SSOIdentityInsertParams{Idp: d.IdP, Subject: d.Subject, UserID: d.UserID})
	case eventlog.TypeUIASessionCompleted:
		var d eventlog.UIASessionCompleted
		if err := e.Decode(&d); err != nil {
			return err
		}
		return q.UIASessionFinish(ctx, b, d.Session)
	}
	return nil
}

// optional is nil for "", else a pointer to s.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
