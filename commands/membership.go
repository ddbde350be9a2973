package commands

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/tidwall/gjson"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pdus"
	"spelt.dev/spelt/sql/gen/writedb"
)

// Membership is a change of a user's membership of a room (spec: client-server API,
// "Room membership"): invite, join, leave, kick, ban, unban or knock.
type Membership struct {
	RoomID string
	Sender string
	// Target is the user whose membership changes (the sender for join, leave, knock).
	Target string
	// Action is one of the Action constants.
	Action string
	Reason string
	// IsDirect marks an invite as a direct chat.
	IsDirect bool
	// Extra is content given by the client (PUT state of m.room.member); nil otherwise.
	Extra json.RawMessage
	// Guest is set when the sender is a guest: a guest joins only rooms whose
	// m.room.guest_access is can_join.
	Guest bool
	// Profile re-sends a joined user's member event with their current profile (after
	// a profile change); nothing is sent when it already carries it.
	Profile bool
}

// Membership actions.
const (
	ActionInvite = "invite"
	ActionJoin   = "join"
	ActionLeave  = "leave"
	ActionKick   = "kick"
	ActionBan    = "ban"
	ActionUnban  = "unban"
	ActionKnock  = "knock"
)

// ChangeMembership appends the m.room.member event of m. Joins of restricted rooms get
// join_authorised_via_users_server from a member who may invite, when the joining
// user is in one of the rooms the join rules allow.
func (c *Commands) ChangeMembership(ctx context.Context, meta Meta, m Membership) (Sent, error) {
	var out Sent
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		preload := append(authKeys(pdus.Proto{Sender: m.Sender, Type: "m.room.member", StateKey: &m.Target, Content: json.RawMessage(`{"membership":"join"}`)}),
			pdus.StateKey{Type: "m.room.guest_access"})
		r, _, err := c.openRoom(ctx, tx, m.RoomID, opening{preload: preload})
		if err != nil {
			return nil, err
		}
		body := map[string]any{}
		if len(m.Extra) > 0 {
			if err := json.Unmarshal(m.Extra, &body); err != nil {
				return nil, badRequest("content must be an object")
			}
		}
		if m.Reason != "" {
			body["reason"] = m.Reason
		}
		current, err := r.membership(ctx, m.Target)
		if err != nil {
			return nil, err
		}
		if m.Profile {
			return c.refreshProfile(ctx, tx, r, m.Target, &out)
		}
		if len(m.Extra) == 0 && (m.Action == ActionInvite || m.Action == ActionJoin || m.Action == ActionKnock) {
			// Member events carry the user's profile (spec: "m.room.member").
			if err := c.withProfile(ctx, tx, m.Target, body); err != nil {
				return nil, err
			}
		}
		switch m.Action {
		case ActionInvite:
			body["membership"] = "invite"
			if m.IsDirect {
				body["is_direct"] = true
			}
			if current == "invite" {
				// Synapse answers a repeated invite with success and no new event.
				return nil, nil
			}
		case ActionJoin:
			body["membership"] = "join"
			if current == "join" {
				// Joining again re-sends the join only when the content changes; the
				// spec lets clients call join as often as they like.
				if cur, err := r.current(ctx, "m.room.member", m.Target); err == nil && cur != nil && len(m.Extra) == 0 {
					out.EventID = cur.ID
					return nil, nil
				}
			}
			if m.Guest {
				ga, err := r.current(ctx, "m.room.guest_access", "")
				if err != nil {
					return nil, err
				}
				if ga == nil || gjson.GetBytes(ga.PDU.Content, "guest_access").Str != "can_join" {
					return nil, ErrGuestsForbidden
				}
			}
			if err := r.authoriseRestrictedJoin(ctx, m.Target, current, body); err != nil {
				return nil, err
			}
		case ActionLeave, ActionKick:
			body["membership"] = "leave"
			if m.Action == ActionKick && current != "join" && current != "invite" && current != "knock" {
				return nil, forbidden("%s is not in the room", m.Target)
			}
		case ActionBan:
			body["membership"] = "ban"
		case ActionUnban:
			if current != "ban" {
				return nil, forbidden("%s is not banned", m.Target)
			}
			body["membership"] = "leave"
		case ActionKnock:
			if !r.rv().Knocks() {
				return nil, forbidden("room version %s does not support knocking", r.version)
			}
			body["membership"] = "knock"
		default:
			return nil, badRequest("unknown membership action %q", m.Action)
		}
		ev, err := r.add(ctx, pdus.Proto{Sender: m.Sender, Type: "m.room.member", StateKey: strPtr(m.Target), Content: content(body)}, nil)
		if err != nil {
			return nil, err
		}
		out.EventID = ev.ID
		return r.news, nil
	})
	out.Position = pos
	return out, err
}

// withProfile sets displayname and avatar_url in a member event's content from the
// user's profile (users of other servers have none here).
func (c *Commands) withProfile(ctx context.Context, tx pgx.Tx, user string, body map[string]any) error {
	p, err := c.q.ProfileGet(ctx, tx, user)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	delete(body, "displayname")
	delete(body, "avatar_url")
	if p.Displayname != nil {
		body["displayname"] = *p.Displayname
	}
	if p.AvatarUrl != nil {
		body["avatar_url"] = *p.AvatarUrl
	}
	return nil
}

// refreshProfile re-sends a joined user's member event, its content kept but for the
// profile, which comes from the user's current one.
func (c *Commands) refreshProfile(ctx context.Context, tx pgx.Tx, r *room, user string, out *Sent) ([]eventlog.NewEvent, error) {
	cur, err := r.current(ctx, "m.room.member", user)
	if err != nil || cur == nil || cur.Membership() != "join" {
		return nil, err
	}
	body := map[string]any{}
	if err := json.Unmarshal(cur.PDU.Content, &body); err != nil {
		return nil, err
	}
	before, _ := json.Marshal(body)
	if err := c.withProfile(ctx, tx, user, body); err != nil {
		return nil, err
	}
	delete(body, "join_authorised_via_users_server") // it authorised the first join only
	if after, _ := json.Marshal(body); string(after) == string(before) {
		out.EventID = cur.ID
		return nil, nil
	}
	ev, err := r.add(ctx, pdus.Proto{Sender: user, Type: "m.room.member", StateKey: strPtr(user), Content: content(body)}, nil)
	if err != nil {
		return nil, err
	}
	out.EventID = ev.ID
	return r.news, nil
}

// authoriseRestrictedJoin fills join_authorised_via_users_server when the room's join
// rule is restricted (or knock_restricted), the user is neither invited nor joined, and
// they are joined to a room the rule allows (spec: client-server API, "Restricted
// rooms").
func (r *room) authoriseRestrictedJoin(ctx context.Context, user, current string, body map[string]any) error {
	if current == "join" || current == "invite" {
		return nil
	}
	jr, err := r.current(ctx, "m.room.join_rules", "")
	if err != nil || jr == nil {
		return err
	}
	rule := gjson.GetBytes(jr.PDU.Content, "join_rule").Str
	if rule != "restricted" && rule != "knock_restricted" {
		return nil
	}
	allowed := false
	gjson.GetBytes(jr.PDU.Content, "allow").ForEach(func(_, a gjson.Result) bool {
		if a.Get("type").Str != "m.room_membership" {
			return true
		}
		rows, err := r.c.q.RoomMembersByMembership(ctx, r.tx, writedb.RoomMembersByMembershipParams{RoomID: a.Get("room_id").Str, Membership: strPtr("join")})
		if err == nil && slices.Contains(rows, user) {
			allowed = true
			return false
		}
		return true
	})
	if !allowed {
		if rule == "knock_restricted" {
			return forbidden("you need an invite, or to be in one of the rooms this room allows: knock to ask for an invite")
		}
		return forbidden("you need an invite, or to be in one of the rooms this room allows")
	}
	members, err := r.c.q.RoomMembersByMembership(ctx, r.tx, writedb.RoomMembersByMembershipParams{RoomID: r.id, Membership: strPtr("join")})
	if err != nil {
		return err
	}
	pl, err := r.levels(ctx)
	if err != nil {
		return err
	}
	for _, m := range members {
		if strings.HasSuffix(m, ":"+r.c.cfg.ServerName) && pl.UserLevel(m) >= pl.ActionLevel("invite") {
			body["join_authorised_via_users_server"] = m
			return r.load(ctx, []pdus.StateKey{{Type: "m.room.member", StateKey: m}})
		}
	}
	return forbidden("no member of this server may invite you to this room")
}

// roomIDFor returns the room ID itself, or the room a local alias points at.
func (c *Commands) roomIDFor(ctx context.Context, roomIDOrAlias string) (string, error) {
	if !strings.HasPrefix(roomIDOrAlias, "#") {
		return roomIDOrAlias, nil
	}
	row, err := c.q.RoomAliasGet(ctx, c.pool, roomIDOrAlias)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrRoomNotFound
	}
	return row.RoomID, err
}

// Join is a request to join a room by ID or alias.
type Join struct {
	User          string
	Guest         bool
	RoomIDOrAlias string
	Reason        string
}

// JoinRoom joins a room by ID or alias (POST /join/{roomIdOrAlias}). Only rooms of
// this server can be joined until federation arrives.
func (c *Commands) JoinRoom(ctx context.Context, meta Meta, j Join) (Sent, string, error) {
	roomIDOrAlias, user := j.RoomIDOrAlias, j.User
	if _, server, _ := strings.Cut(roomIDOrAlias, ":"); strings.HasPrefix(roomIDOrAlias, "#") && server != c.cfg.ServerName {
		return Sent{}, "", ErrRemoteRoom
	}
	roomID, err := c.roomIDFor(ctx, roomIDOrAlias)
	if err != nil {
		return Sent{}, "", err
	}
	sent, err := c.ChangeMembership(ctx, meta, Membership{RoomID: roomID, Sender: user, Target: user, Action: ActionJoin, Reason: j.Reason, Guest: j.Guest})
	if errors.Is(err, ErrRoomNotFound) {
		if _, server, _ := strings.Cut(roomID, ":"); server != c.cfg.ServerName {
			return Sent{}, "", ErrRemoteRoom
		}
	}
	return sent, roomID, err
}

// Knock knocks on a room by ID or alias (POST /knock/{roomIdOrAlias}).
func (c *Commands) Knock(ctx context.Context, meta Meta, user, roomIDOrAlias, reason string) (Sent, string, error) {
	roomID, err := c.roomIDFor(ctx, roomIDOrAlias)
	if err != nil {
		return Sent{}, "", err
	}
	sent, err := c.ChangeMembership(ctx, meta, Membership{RoomID: roomID, Sender: user, Target: user, Action: ActionKnock, Reason: reason})
	return sent, roomID, err
}

// Forget forgets a room the user has left (POST /rooms/{roomId}/forget).
func (c *Commands) Forget(ctx context.Context, meta Meta, user, roomID string) (eventlog.Position, error) {
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		if _, err := c.q.RoomGet(ctx, tx, roomID); errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrRoomNotFound
		} else if err != nil {
			return nil, err
		}
		rows, err := c.q.RoomStateEvents(ctx, tx, writedb.RoomStateEventsParams{RoomID: roomID, Types: []string{"m.room.member"}, StateKeys: []string{user}})
		if err != nil {
			return nil, err
		}
		if len(rows) > 0 {
			m := memberOf(rows[0].Pdu)
			if m == "join" || m == "invite" || m == "knock" {
				return nil, badRequest("you are still in the room (%s): leave it first", m)
			}
		}
		return []eventlog.NewEvent{{Stream: eventlog.UserStream(user), Type: eventlog.TypeRoomForgotten,
			Data: eventlog.RoomForgotten{RoomID: roomID, UserID: user}, ExpectVersion: eventlog.AnyVersion}}, nil
	})
}

// memberOf is the membership of an m.room.member PDU.
func memberOf(pdu string) string { return gjson.Get(pdu, "content.membership").Str }
