package queries

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/sql/gen/readdb"
)

// ErrPresenceForbidden: the viewer may not see the user's presence.
var ErrPresenceForbidden = errors.New("you are not allowed to see this user's presence")

// UserPresence is a user's presence as GET /presence/{userId}/status gives it.
type UserPresence struct {
	Presence        string  `json:"presence"`
	LastActiveAgo   *int64  `json:"last_active_ago,omitempty"`
	StatusMsg       *string `json:"status_msg,omitempty"`
	CurrentlyActive *bool   `json:"currently_active,omitempty"`
}

// currentlyActiveWithin is how recent an online user's last activity must be for them to
// count as currently active (Synapse's window is similar).
const currentlyActiveWithin = 5 * 60_000

// UseActivity gives the time of each user's last request to this process, which is
// fresher than what the log records (presence changes, and device sightings sampled
// every few minutes). It is called once, before serving.
func (q *Queries) UseActivity(fn func(userID string) time.Time) { q.activity = fn }

// lastActive is when user was last active: the later of recorded (their last presence
// change or device sighting) and their last request to this process.
func (q *Queries) lastActive(user string, recorded time.Time) time.Time {
	if q.activity != nil {
		if t := q.activity(user); t.After(recorded) {
			return t
		}
	}
	return recorded
}

// Presence returns user's presence for viewer: their own, or that of a user they share
// a room with (ErrPresenceForbidden otherwise). A user who never set one is offline;
// an unknown user is ErrNotFound.
func (q *Queries) Presence(ctx context.Context, viewer, user string) (UserPresence, error) {
	if viewer != user {
		share, err := q.q.UsersShareARoom(ctx, q.pool, readdb.UsersShareARoomParams{UserA: viewer, UserB: user})
		if err != nil {
			return UserPresence{}, fmt.Errorf("presence: %w", err)
		}
		if !share {
			return UserPresence{}, ErrPresenceForbidden
		}
	}
	row, err := q.q.PresenceGet(ctx, q.pool, user)
	if errors.Is(err, pgx.ErrNoRows) {
		if taken, err := q.q.AccountExists(ctx, q.pool, user); err != nil || !taken {
			if err == nil {
				err = ErrNotFound
			}
			return UserPresence{}, err
		}
		return UserPresence{Presence: "offline"}, nil
	}
	if err != nil {
		return UserPresence{}, fmt.Errorf("presence: %w", err)
	}
	ago := max(q.now().Sub(q.lastActive(user, row.LastActive)).Milliseconds(), 0)
	active := row.Presence == "online" && ago < currentlyActiveWithin
	return UserPresence{Presence: row.Presence, LastActiveAgo: &ago, StatusMsg: row.StatusMsg, CurrentlyActive: &active}, nil
}
