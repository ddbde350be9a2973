package queries

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"spelt.dev/spelt/sql/gen/readdb"
)

// RoomChunk is a room as the room directory and space hierarchies show it (the spec's
// PublicRoomsChunk).
type RoomChunk struct {
	RoomID           string  `json:"room_id"`
	NumJoinedMembers int64   `json:"num_joined_members"`
	WorldReadable    bool    `json:"world_readable"`
	GuestCanJoin     bool    `json:"guest_can_join"`
	Name             string  `json:"name,omitempty"`
	Topic            string  `json:"topic,omitempty"`
	AvatarURL        string  `json:"avatar_url,omitempty"`
	CanonicalAlias   string  `json:"canonical_alias,omitempty"`
	JoinRule         string  `json:"join_rule,omitempty"`
	RoomType         *string `json:"room_type,omitempty"`
}

// SpaceRoom is one room of GET /hierarchy: its RoomChunk plus the space's
// m.space.child events.
type SpaceRoom struct {
	RoomChunk
	ChildrenState []json.RawMessage `json:"children_state"`

	children []spaceChild
	allow    []string // rooms whose members may join (restricted join rules)
}

type spaceChild struct {
	roomID    string
	suggested bool
	order     string
	ts        int64
}

// HierarchyRequest is a GET /v1/rooms/{roomId}/hierarchy request.
type HierarchyRequest struct {
	RoomID        string
	SuggestedOnly bool
	MaxDepth      int // < 0: unlimited
	Limit         int
	From          string
}

// Hierarchy is a page of a space's rooms.
type Hierarchy struct {
	Rooms     []SpaceRoom `json:"rooms"`
	NextBatch string      `json:"next_batch,omitempty"`
}

// summaryTypes are the state types a room's summary comes from.
var summaryTypes = []string{"m.room.name", "m.room.topic", "m.room.avatar", "m.room.canonical_alias", "m.room.join_rules",
	"m.room.history_visibility", "m.room.guest_access", "m.space.child"}

// summaries reads the summaries of rooms, by room ID; unknown rooms are absent.
func (q *Queries) summaries(ctx context.Context, rooms []string) (map[string]*SpaceRoom, error) {
	out := map[string]*SpaceRoom{}
	types, err := q.q.RoomTypes(ctx, q.pool, rooms)
	if err != nil {
		return nil, err
	}
	for _, t := range types {
		out[t.RoomID] = &SpaceRoom{RoomChunk: RoomChunk{RoomID: t.RoomID, RoomType: t.RoomType}, ChildrenState: []json.RawMessage{}}
	}
	counts, err := q.q.RoomJoinedCounts(ctx, q.pool, rooms)
	if err != nil {
		return nil, err
	}
	for _, c := range counts {
		if r := out[c.RoomID]; r != nil {
			r.NumJoinedMembers = c.Joined
		}
	}
	state, err := q.q.RoomCurrentStateOfTypes(ctx, q.pool, readdb.RoomCurrentStateOfTypesParams{RoomIds: rooms, Types: summaryTypes})
	if err != nil {
		return nil, err
	}
	for _, s := range state {
		r := out[s.RoomID]
		if r == nil {
			continue
		}
		var ev struct {
			Content map[string]json.RawMessage `json:"content"`
		}
		if json.Unmarshal([]byte(s.Event), &ev) != nil {
			continue
		}
		str := func(k string) string {
			var v string
			_ = json.Unmarshal(ev.Content[k], &v)
			return v
		}
		switch s.Type {
		case "m.room.name":
			r.Name = str("name")
		case "m.room.topic":
			r.Topic = str("topic")
		case "m.room.avatar":
			r.AvatarURL = str("url")
		case "m.room.canonical_alias":
			r.CanonicalAlias = str("alias")
		case "m.room.join_rules":
			r.JoinRule = str("join_rule")
			var allow []struct {
				Type   string `json:"type"`
				RoomID string `json:"room_id"`
			}
			_ = json.Unmarshal(ev.Content["allow"], &allow)
			for _, a := range allow {
				if a.Type == "m.room_membership" {
					r.allow = append(r.allow, a.RoomID)
				}
			}
		case "m.room.history_visibility":
			r.WorldReadable = str("history_visibility") == "world_readable"
		case "m.room.guest_access":
			r.GuestCanJoin = str("guest_access") == "can_join"
		case "m.space.child":
			// A child without via is not a child (spec: m.space.child).
			var via []string
			if json.Unmarshal(ev.Content["via"], &via) != nil || len(via) == 0 {
				continue
			}
			var suggested bool
			_ = json.Unmarshal(ev.Content["suggested"], &suggested)
			r.children = append(r.children, spaceChild{roomID: s.StateKey, suggested: suggested, order: str("order"), ts: s.OriginServerTs})
			stripped, err := json.Marshal(map[string]any{"type": s.Type, "state_key": s.StateKey, "sender": s.Sender,
				"content": ev.Content, "origin_server_ts": s.OriginServerTs})
			if err != nil {
				return nil, err
			}
			r.ChildrenState = append(r.ChildrenState, stripped)
		}
	}
	return out, nil
}

// ErrBadHierarchyToken is a from token the hierarchy did not give.
var ErrBadHierarchyToken = errors.New("unknown hierarchy pagination token")

// Hierarchy walks a space depth first (spec: client-server API, "Spaces"), listing the
// rooms the user may see: those they are in or invited to, world-readable ones, and
// those they could join (public, knock, or restricted to a room they are in). Only rooms
// of this server are known until federation. A page's token is the position in the walk.
func (q *Queries) Hierarchy(ctx context.Context, v Viewer, req HierarchyRequest) (Hierarchy, error) {
	skip := 0
	if req.From != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(req.From, "h"))
		if err != nil || n < 0 || !strings.HasPrefix(req.From, "h") {
			return Hierarchy{}, ErrBadHierarchyToken
		}
		skip = n
	}
	limit := req.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 100)

	type item struct {
		roomID string
		depth  int
	}
	stack := []item{{req.RoomID, 0}}
	seen := map[string]bool{}
	var out Hierarchy
	out.Rooms = []SpaceRoom{}
	index := 0
	for len(stack) > 0 && index < skip+limit+1 && index < 10000 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[it.roomID] {
			continue
		}
		seen[it.roomID] = true
		sums, err := q.summaries(ctx, []string{it.roomID})
		if err != nil {
			return Hierarchy{}, fmt.Errorf("hierarchy: %w", err)
		}
		r := sums[it.roomID]
		if r == nil {
			if it.depth == 0 {
				return Hierarchy{}, ErrRoomForbidden
			}
			continue // a room this server does not know
		}
		ok, err := q.accessible(ctx, v.UserID, r)
		if err != nil {
			return Hierarchy{}, err
		}
		if !ok {
			if it.depth == 0 {
				return Hierarchy{}, ErrRoomForbidden
			}
			continue
		}
		if index >= skip {
			if len(out.Rooms) == limit {
				out.NextBatch = "h" + strconv.Itoa(index)
				break
			}
			out.Rooms = append(out.Rooms, *r)
		}
		index++
		if req.MaxDepth >= 0 && it.depth >= req.MaxDepth {
			continue
		}
		// Children in the spec's order: by order, then by the child event's timestamp,
		// then room ID; pushed in reverse so the first comes off the stack first.
		kids := r.children
		sortChildren(kids)
		for i := len(kids) - 1; i >= 0; i-- {
			if req.SuggestedOnly && !kids[i].suggested {
				continue
			}
			stack = append(stack, item{kids[i].roomID, it.depth + 1})
		}
	}
	return out, nil
}

// sortChildren orders a space's children as the spec says: by valid "order" first,
// then by the m.space.child event's timestamp, then by room ID.
func sortChildren(kids []spaceChild) {
	validOrder := func(o string) bool {
		if o == "" || len(o) > 50 {
			return false
		}
		for _, c := range o {
			if c < 0x20 || c > 0x7e {
				return false
			}
		}
		return true
	}
	slices.SortFunc(kids, func(a, b spaceChild) int {
		ao, bo := validOrder(a.order), validOrder(b.order)
		switch {
		case ao && bo && a.order != b.order:
			return strings.Compare(a.order, b.order)
		case ao != bo:
			if ao {
				return -1
			}
			return 1
		case a.ts != b.ts:
			return cmp.Compare(a.ts, b.ts)
		}
		return strings.Compare(a.roomID, b.roomID)
	})
}

// accessible reports whether the user may see a room in a space's hierarchy.
func (q *Queries) accessible(ctx context.Context, user string, r *SpaceRoom) (bool, error) {
	if r.WorldReadable {
		return true, nil
	}
	switch r.JoinRule {
	case "public", "knock":
		return true, nil
	}
	rooms := append([]string{r.RoomID}, r.allow...)
	ms, err := q.q.RoomMembershipsOf(ctx, q.pool, readdb.RoomMembershipsOfParams{RoomIds: rooms, UserID: user})
	if err != nil {
		return false, err
	}
	for _, m := range ms {
		if m.RoomID == r.RoomID && (m.Membership == "join" || m.Membership == "invite") {
			return true, nil
		}
		if m.RoomID != r.RoomID && m.Membership == "join" && (r.JoinRule == "restricted" || r.JoinRule == "knock_restricted") {
			return true, nil
		}
	}
	return false, nil
}
