package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/internal/push"
	"spelt.dev/spelt/sql/gen/projdb"
)

// The rooms projector also projects which room events notify (and highlight for)
// each joined local member, by the server-default push rules (spec: client-server
// API, "Push Rules"), for the unread counts of /sync: in its transaction, so that the
// counts always match the timelines. The room state the rules look at (joined members
// and their display names, power levels) comes from its own current state, read with
// the batch's prelude and followed through the batch; a redacted event notifies no
// more.

// notifyRoom is what the push rules see of one room during a batch.
type notifyRoom struct {
	members map[string]string // joined user → display name
	power   *event.PowerLevelsEventContent
}

// ruleCache keeps users' rule sets between batches (parsing one takes tens of
// microseconds); a rule set depends on the user ID alone, so keeping it does not make
// the projection depend on anything but the log.
type ruleCache struct {
	mu   sync.Mutex
	sets map[string]*push.Rules
}

// maxCachedRulesets bounds the cache; past it, it starts again empty.
const maxCachedRulesets = 50_000

func (c *ruleCache) get(user string) (*push.Rules, error) {
	c.mu.Lock()
	rs := c.sets[user]
	c.mu.Unlock()
	if rs != nil {
		return rs, nil
	}
	set, err := push.DefaultRuleset(user)
	if err != nil {
		return nil, err
	}
	rs = push.Compile(user, set)
	c.mu.Lock()
	if len(c.sets) >= maxCachedRulesets {
		clear(c.sets)
	}
	c.sets[user] = rs
	c.mu.Unlock()
	return rs, nil
}

// notifyRooms reads what the rooms projector's prelude gives of the push rules' room
// state: members ([room, user, display name]) and power levels ([room, content]).
func notifyRooms(members, power string) (map[string]*notifyRoom, error) {
	rooms := map[string]*notifyRoom{}
	room := func(id string) *notifyRoom {
		if rooms[id] == nil {
			rooms[id] = &notifyRoom{members: map[string]string{}}
		}
		return rooms[id]
	}
	var ms [][3]string
	if err := json.Unmarshal([]byte(members), &ms); err != nil {
		return nil, err
	}
	for _, m := range ms {
		room(m[0]).members[m[1]] = m[2]
	}
	var ps [][2]json.RawMessage
	if err := json.Unmarshal([]byte(power), &ps); err != nil {
		return nil, err
	}
	for _, p := range ps {
		var id string
		var pl event.PowerLevelsEventContent
		if json.Unmarshal(p[0], &id) == nil && json.Unmarshal(p[1], &pl) == nil {
			room(id).power = &pl
		}
	}
	return rooms, nil
}

// notify queues in b the notifications of parsed room events (in log order), judged
// by rooms (notifyRooms), which it keeps up to date.
func notify(ctx context.Context, b *pgbatch.DB, serverName string, rules *ruleCache, items []parsedEvent, rooms map[string]*notifyRoom) error {
	q := projdb.New()
	for _, it := range items {
		if rooms[it.d.RoomID] == nil {
			rooms[it.d.RoomID] = &notifyRoom{members: map[string]string{}}
		}
	}
	if rules == nil {
		rules = newRuleCache()
	}
	for _, it := range items {
		r := rooms[it.d.RoomID]
		if redacts := it.ev.Redacts(); it.ev.Type() == "m.room.redaction" && redacts != "" {
			if err := q.EventPushActionsDeleteEvent(ctx, b, redacts); err != nil {
				return fmt.Errorf("notifications: %w", err)
			}
		}
		if err := notifyMembers(ctx, b, q, serverName, rules, it, r); err != nil {
			return err
		}
		// The event changes the state the next events of the batch are judged by (the
		// batch's prelude read the state before it).
		key, isState := it.ev.StateKey()
		switch {
		case isState && it.ev.Type() == "m.room.member":
			if gjson.GetBytes(it.d.PDU, "content.membership").Str == "join" {
				name := gjson.GetBytes(it.d.PDU, "content.displayname").Str
				if name == "" {
					name = key
				}
				r.members[key] = name
			} else {
				delete(r.members, key)
			}
		case isState && key == "" && it.ev.Type() == "m.room.power_levels":
			var pl event.PowerLevelsEventContent
			if json.Unmarshal(it.ev.PDU.Content, &pl) == nil {
				r.power = &pl
			}
		}
	}
	return nil
}

// notifyMembers queues the notifications of one event for the room's joined local
// members but its sender.
func notifyMembers(ctx context.Context, b *pgbatch.DB, q *projdb.Queries, serverName string, rules *ruleCache, it parsedEvent, r *notifyRoom) error {
	var candidates []string
	for user := range r.members {
		if user != it.ev.Sender() && strings.HasSuffix(user, ":"+serverName) {
			candidates = append(candidates, user)
		}
	}
	if len(candidates) == 0 {
		return nil // nobody to notify: no need to look at the event
	}
	// The rules look at the type, sender, state key and content only: no need to
	// decode the whole PDU again.
	evt := event.Event{ID: id.EventID(it.d.EventID), RoomID: id.RoomID(it.d.RoomID), Sender: id.UserID(it.ev.Sender()),
		Type: event.Type{Type: it.ev.Type()}}
	if key, ok := it.ev.StateKey(); ok {
		evt.StateKey = &key
	}
	if err := json.Unmarshal(it.ev.PDU.Content, &evt.Content); err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	judged := push.NewEvent(&evt)
	thread := "main"
	if rel := gjson.GetBytes(it.d.PDU, "content.m\\.relates_to"); rel.Get("rel_type").Str == "m.thread" && rel.Get("event_id").Str != "" {
		thread = rel.Get("event_id").Str
	}
	var users []string
	var highlights []bool
	for _, user := range candidates {
		rs, err := rules.get(user)
		if err != nil {
			return fmt.Errorf("notifications: %w", err)
		}
		notify, highlight := judged.Evaluate(rs, push.Room{Displayname: r.members[user], Members: len(r.members), PowerLevels: r.power})
		if notify {
			users, highlights = append(users, user), append(highlights, highlight)
		}
	}
	if len(users) == 0 {
		return nil
	}
	if err := q.EventPushActionsInsert(ctx, b, projdb.EventPushActionsInsertParams{EventID: it.d.EventID, RoomID: it.d.RoomID,
		ThreadID: thread, UserIds: users, Highlights: highlights, StreamOrdering: it.ordering}); err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	return nil
}

func newRuleCache() *ruleCache { return &ruleCache{sets: map[string]*push.Rules{}} }
