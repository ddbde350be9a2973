package queries

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/sql/gen/readdb"
)

// Errors of room queries.
var (
	// ErrRoomForbidden: the user may not see the room (or the event) they asked for.
	ErrRoomForbidden = errors.New("you are not allowed to see this room")
	ErrRoomNotFound  = errors.New("room not found")
	ErrEventNotFound = errors.New("event not found")
	ErrBadToken      = errors.New("unknown pagination token")
)

// Viewer is who reads: the user and the device (for unsigned.transaction_id).
type Viewer struct {
	UserID   string
	DeviceID string
}

// eventRow is a room event as read models store it.
type eventRow struct {
	StreamOrdering  int64
	EventID         string
	RoomID          string
	Type            string
	StateKey        *string
	Sender          string
	OriginServerTs  int64
	Event           string
	ReplacesState   *string
	RedactedBecause *string
	Visibility      string
	Membership      *string
	TxnID           *string
	TxnDevice       *string
}

// span is a stretch of a user's membership of a room: membership from the event at
// From until the event at To (0: still).
type span struct {
	membership string
	from, to   int64
}

// access is what decides which events of a room a user sees (spec: client-server API,
// "History visibility").
type access struct {
	spans []span
}

func (q *Queries) access(ctx context.Context, db readdb.DBTX, roomID, user string) (access, error) {
	rows, err := q.q.RoomMembershipSpans(ctx, db, readdb.RoomMembershipSpansParams{RoomID: roomID, UserID: user})
	if err != nil {
		return access{}, fmt.Errorf("membership: %w", err)
	}
	a := access{spans: make([]span, len(rows))}
	for i, r := range rows {
		a.spans[i] = span{membership: deref(r.Membership), from: r.FromOrdering}
		if r.ToOrdering != nil {
			a.spans[i].to = *r.ToOrdering
		}
	}
	return a, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// before is the membership just before the event at ordering n; after just after it.
func (a access) before(n int64) string {
	for _, s := range a.spans {
		if s.from < n && (s.to == 0 || s.to >= n) {
			return s.membership
		}
	}
	return "leave"
}

func (a access) after(n int64) string {
	for _, s := range a.spans {
		if s.from <= n && (s.to == 0 || s.to > n) {
			return s.membership
		}
	}
	return "leave"
}

// current is the user's membership now.
func (a access) current() string {
	if len(a.spans) > 0 && a.spans[len(a.spans)-1].to == 0 {
		return a.spans[len(a.spans)-1].membership
	}
	return "leave"
}

// joinedSince reports whether the user was joined at some point at or after n.
func (a access) joinedSince(n int64) bool {
	for _, s := range a.spans {
		if s.membership == "join" && (s.to == 0 || s.to > n) {
			return true
		}
	}
	return false
}

// lastSeen is the ordering up to which a user who is no longer in the room may read:
// the event that ended their last stay. 0 when they never were.
func (a access) lastSeen() int64 {
	var last int64
	for _, s := range a.spans {
		if s.membership == "join" && s.to > last {
			last = s.to
		}
	}
	return last
}

// sees applies the history visibility rules to one event.
func (a access) sees(user string, e *eventRow) bool {
	visible := func(vis, membership string) bool {
		switch {
		case vis == "world_readable":
			return true
		case membership == "join":
			return true
		case vis == "shared" && a.joinedSince(e.StreamOrdering):
			return true
		case vis == "invited" && membership == "invite":
			return true
		}
		return false
	}
	if visible(e.Visibility, a.before(e.StreamOrdering)) {
		return true
	}
	// The user's own membership events, and history visibility events, are visible
	// when the state just after them allows it too.
	own := e.Type == "m.room.member" && e.StateKey != nil && *e.StateKey == user
	if own || e.Type == "m.room.history_visibility" {
		vis := e.Visibility
		if e.Type == "m.room.history_visibility" {
			var c struct {
				Content struct {
					HV string `json:"history_visibility"`
				} `json:"content"`
			}
			if json.Unmarshal([]byte(e.Event), &c) == nil && c.Content.HV != "" {
				vis = c.Content.HV
			}
		}
		return visible(vis, a.after(e.StreamOrdering))
	}
	return false
}

// roomVisibility is the room's current history visibility.
func (q *Queries) roomVisibility(ctx context.Context, db readdb.DBTX, roomID string, at int64) (string, error) {
	row, err := q.q.RoomStateEventAt(ctx, db, readdb.RoomStateEventAtParams{RoomID: roomID, Type: "m.room.history_visibility", StateKey: "", At: at})
	if errors.Is(err, pgx.ErrNoRows) {
		return "shared", nil
	}
	if err != nil {
		return "", err
	}
	var c struct {
		Content struct {
			HV string `json:"history_visibility"`
		} `json:"content"`
	}
	_ = json.Unmarshal([]byte(row.Event), &c)
	if c.Content.HV == "" {
		return "shared", nil
	}
	return c.Content.HV, nil
}

// stateView decides which state of a room the user may read: the current state when
// they are joined or the room is world readable, the state when they left otherwise
// (spec: GET /rooms/{roomId}/state). It fails with ErrRoomForbidden when neither.
func (q *Queries) stateView(ctx context.Context, db readdb.DBTX, roomID, user string) (at int64, a access, err error) {
	last, err := q.q.RoomLastOrdering(ctx, db, roomID)
	if err != nil {
		return 0, a, err
	}
	if last == 0 {
		return 0, a, ErrRoomForbidden // unknown room: the same answer as a hidden one
	}
	a, err = q.access(ctx, db, roomID, user)
	if err != nil {
		return 0, a, err
	}
	if a.current() == "join" {
		return last, a, nil
	}
	vis, err := q.roomVisibility(ctx, db, roomID, last)
	if err != nil {
		return 0, a, err
	}
	if vis == "world_readable" {
		return last, a, nil
	}
	if seen := a.lastSeen(); seen > 0 {
		return seen, a, nil
	}
	return 0, a, ErrRoomForbidden
}

// Token is a position in a room's timeline: "s<N>" is just after the event with
// stream ordering N.
type Token int64

func (t Token) String() string { return "s" + strconv.FormatInt(int64(t), 10) }

// ParseToken reads a pagination token. Sync tokens ("s<N>_...") are accepted: their
// first part is the room events' position.
func ParseToken(s string) (Token, error) {
	if !strings.HasPrefix(s, "s") {
		return 0, ErrBadToken
	}
	s, _, _ = strings.Cut(s[1:], "_")
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, ErrBadToken
	}
	return Token(n), nil
}
