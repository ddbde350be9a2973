package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/pushrules"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pdus"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/internal/push"
	"spelt.dev/spelt/sql/gen/projdb"
)

// Notifications projects which room events notify (and highlight for) each joined
// local member, by the server-default push rules (spec: client-server API, "Push
// Rules"), for the unread counts of /sync. The room state the rules look at (members
// and their display names, power levels) it keeps itself from the events, so that it
// depends on the log alone; a redacted event notifies no more.
type Notifications struct {
	// ServerName is this server's name: only its users are notified here.
	ServerName string
}

// Name implements Projector.
func (Notifications) Name() string { return "notifications" }

// Version implements Projector.
func (Notifications) Version() int { return 1 }

// Tables implements Projector.
func (Notifications) Tables() []string {
	return []string{"push_room_members", "push_room_power_levels", "event_push_actions"}
}

// Handles implements Projector.
func (Notifications) Handles(t string) bool { return t == eventlog.TypeRoomEventAccepted }

// notifyRoom is what the push rules see of one room during a batch.
type notifyRoom struct {
	members map[string]string // joined user → display name
	power   *event.PowerLevelsEventContent
}

// Apply implements Projector.
func (n Notifications) Apply(ctx context.Context, tx pgx.Tx, events []eventlog.Event) error {
	q := projdb.New()
	type item struct {
		d  eventlog.RoomEventAccepted
		ev *pdus.Event
	}
	items := make([]item, 0, len(events))
	var roomIDs []string
	rooms := map[string]*notifyRoom{}
	for _, e := range events {
		var d eventlog.RoomEventAccepted
		if err := e.Decode(&d); err != nil {
			return fmt.Errorf("notifications: %w", err)
		}
		ev, err := pdus.Parse(d.RoomVersion, d.EventID, d.PDU)
		if err != nil {
			return fmt.Errorf("notifications: %w", err)
		}
		items = append(items, item{d, ev})
		if rooms[d.RoomID] == nil {
			rooms[d.RoomID] = &notifyRoom{members: map[string]string{}}
			roomIDs = append(roomIDs, d.RoomID)
		}
	}
	members, err := q.PushRoomMembers(ctx, tx, roomIDs)
	if err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	for _, m := range members {
		rooms[m.RoomID].members[m.UserID] = m.Displayname
	}
	levels, err := q.PushRoomPowerLevels(ctx, tx, roomIDs)
	if err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	for _, l := range levels {
		var pl event.PowerLevelsEventContent
		if json.Unmarshal([]byte(l.Content), &pl) == nil {
			rooms[l.RoomID].power = &pl
		}
	}
	var b pgbatch.DB
	rulesets := map[string]*pushrules.PushRuleset{}
	for _, it := range items {
		r := rooms[it.d.RoomID]
		if redacts := it.ev.Redacts(); it.ev.Type() == "m.room.redaction" && redacts != "" {
			if err := q.EventPushActionsDeleteEvent(ctx, &b, redacts); err != nil {
				return fmt.Errorf("notifications: %w", err)
			}
		}
		var evt event.Event
		if err := json.Unmarshal(it.d.PDU, &evt); err != nil {
			return fmt.Errorf("notifications: %w", err)
		}
		evt.ID, evt.RoomID = id.EventID(it.d.EventID), id.RoomID(it.d.RoomID)
		thread := "main"
		if rel := gjson.GetBytes(it.d.PDU, "content.m\\.relates_to"); rel.Get("rel_type").Str == "m.thread" && rel.Get("event_id").Str != "" {
			thread = rel.Get("event_id").Str
		}
		for user, name := range r.members {
			if user == it.ev.Sender() || !strings.HasSuffix(user, ":"+n.ServerName) {
				continue
			}
			rs := rulesets[user]
			if rs == nil {
				if rs, err = push.DefaultRuleset(user); err != nil {
					return fmt.Errorf("notifications: %w", err)
				}
				rulesets[user] = rs
			}
			notify, highlight := push.Evaluate(rs, push.Room{Displayname: name, Members: len(r.members), PowerLevels: r.power}, &evt)
			if !notify {
				continue
			}
			if err := q.EventPushActionInsert(ctx, &b, projdb.EventPushActionInsertParams{UserID: user, EventID: it.d.EventID,
				RoomID: it.d.RoomID, ThreadID: thread, Highlight: highlight}); err != nil {
				return fmt.Errorf("notifications: %w", err)
			}
		}
		// The event changes the state the next events are judged by.
		key, isState := it.ev.StateKey()
		switch {
		case isState && it.ev.Type() == "m.room.member":
			if gjson.GetBytes(it.d.PDU, "content.membership").Str == "join" {
				name := gjson.GetBytes(it.d.PDU, "content.displayname").Str
				if name == "" {
					name = key
				}
				r.members[key] = name
				err = q.PushRoomMemberUpsert(ctx, &b, projdb.PushRoomMemberUpsertParams{RoomID: it.d.RoomID, UserID: key, Displayname: name})
			} else {
				delete(r.members, key)
				err = q.PushRoomMemberDelete(ctx, &b, projdb.PushRoomMemberDeleteParams{RoomID: it.d.RoomID, UserID: key})
			}
		case isState && key == "" && it.ev.Type() == "m.room.power_levels":
			content := gjson.GetBytes(it.d.PDU, "content").Raw
			var pl event.PowerLevelsEventContent
			if json.Unmarshal([]byte(content), &pl) == nil {
				r.power = &pl
			}
			err = q.PushRoomPowerLevelsUpsert(ctx, &b, projdb.PushRoomPowerLevelsUpsertParams{RoomID: it.d.RoomID, Content: []byte(content)})
		}
		if err != nil {
			return fmt.Errorf("notifications: %w", err)
		}
	}
	return b.Send(ctx, tx)
}
