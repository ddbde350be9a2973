// Package push holds the server-default push rules (spec: client-server API, "Push
// Rules", "Predefined Rules") and evaluates them with mautrix's pushrules: which events
// notify a user, and which highlight.
package push

import (
	"encoding/json"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/pushrules"
)

// defaultRules is the spec's server-default rule set (v1.13), in its priority order.
// USER_ID and LOCALPART stand for the user's; both are JSON-quoted when filled in.
const defaultRules = `{
  "override": [
    {"rule_id": ".m.rule.master", "default": true, "enabled": false, "conditions": [], "actions": []},
    {"rule_id": ".m.rule.suppress_notices", "default": true, "enabled": true,
     "conditions": [{"kind": "event_match", "key": "content.msgtype", "pattern": "m.notice"}], "actions": []},
    {"rule_id": ".m.rule.invite_for_me", "default": true, "enabled": true,
     "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.member"},
                    {"kind": "event_match", "key": "content.membership", "pattern": "invite"},
                    {"kind": "event_match", "key": "state_key", "pattern": USER_ID}],
     "actions": ["notify", {"set_tweak": "sound", "value": "default"}]},
    {"rule_id": ".m.rule.member_event", "default": true, "enabled": true,
     "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.member"}], "actions": []},
    {"rule_id": ".m.rule.is_user_mention", "default": true, "enabled": true,
     "conditions": [{"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": USER_ID}],
     "actions": ["notify", {"set_tweak": "sound", "value": "default"}, {"set_tweak": "highlight"}]},
    {"rule_id": ".m.rule.contains_display_name", "default": true, "enabled": true,
     "conditions": [{"kind": "contains_display_name"}],
     "actions": ["notify", {"set_tweak": "sound", "value": "default"}, {"set_tweak": "highlight"}]},
    {"rule_id": ".m.rule.is_room_mention", "default": true, "enabled": true,
     "conditions": [{"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": true},
                    {"kind": "sender_notification_permission", "key": "room"}],
     "actions": ["notify", {"set_tweak": "highlight"}]},
    {"rule_id": ".m.rule.roomnotif", "default": true, "enabled": true,
     "conditions": [{"kind": "event_match", "key": "content.body", "pattern": "@room"},
                    {"kind": "sender_notification_permission", "key": "room"}],
     "actions": ["notify", {"set_tweak": "highlight"}]},
    {"rule_id": ".m.rule.tombstone", "default": true, "enabled": true,
     "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.tombstone"},
                    {"kind": "event_match", "key": "state_key", "pattern": ""}],
     "actions": ["notify", {"set_tweak": "highlight"}]},
    {"rule_id": ".m.rule.reaction", "default": true, "enabled": true,
     "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.reaction"}], "actions": []},
    {"rule_id": ".m.rule.room.server_acl", "default": true, "enabled": true,
     "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.server_acl"},
                    {"kind": "event_match", "key": "state_key", "pattern": ""}], "actions": []},
    {"rule_id": ".m.rule.suppress_edits", "default": true, "enabled": true,
     "conditions": [{"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type", "value": "m.replace"}], "actions": []}
  ],
  "content": [
    {"rule_id": ".m.rule.contains_user_name", "default": true, "enabled": true, "pattern": LOCALPART,
     "actions": ["notify", {"set_tweak": "sound", "value": "default"}, {"set_tweak": "highlight"}]}
  ],
  "room": [],
  "sender": [],
  "underride": [
    {"rule_id": ".m.rule.call", "default": true, "enabled": true,
     "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.call.invite"}],
     "actions": ["notify", {"set_tweak": "sound", "value": "ring"}]},
    {"rule_id": ".m.rule.encrypted_room_one_to_one", "default": true, "enabled": true,
     "conditions": [{"kind": "room_member_count", "is": "2"}, {"kind": "event_match", "key": "type", "pattern": "m.room.encrypted"}],
     "actions": ["notify", {"set_tweak": "sound", "value": "default"}]},
    {"rule_id": ".m.rule.room_one_to_one", "default": true, "enabled": true,
     "conditions": [{"kind": "room_member_count", "is": "2"}, {"kind": "event_match", "key": "type", "pattern": "m.room.message"}],
     "actions": ["notify", {"set_tweak": "sound", "value": "default"}]},
    {"rule_id": ".m.rule.message", "default": true, "enabled": true,
     "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.message"}], "actions": ["notify"]},
    {"rule_id": ".m.rule.encrypted", "default": true, "enabled": true,
     "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.encrypted"}], "actions": ["notify"]}
  ]
}`

// DefaultRuleset returns the server-default push rules of a user.
func DefaultRuleset(userID string) (*pushrules.PushRuleset, error) {
	localpart := strings.TrimPrefix(userID, "@")
	localpart, _, _ = strings.Cut(localpart, ":")
	quoted := func(s string) string {
		b, _ := json.Marshal(s) // strings always marshal
		return string(b)
	}
	raw := strings.NewReplacer("USER_ID", quoted(userID), "LOCALPART", quoted(localpart)).Replace(defaultRules)
	var rs pushrules.PushRuleset
	if err := json.Unmarshal([]byte(raw), &rs); err != nil {
		return nil, fmt.Errorf("push: default rules: %w", err)
	}
	return &rs, nil
}

// Room is a room as the push rules of one user see it.
type Room struct {
	// Displayname is the user's display name in the room.
	Displayname string
	// Members is the number of joined members.
	Members     int
	PowerLevels *event.PowerLevelsEventContent
}

// GetOwnDisplayname implements pushrules.Room.
func (r Room) GetOwnDisplayname() string { return r.Displayname }

// GetMemberCount implements pushrules.Room.
func (r Room) GetMemberCount() int { return r.Members }

// GetPowerLevels implements pushrules.PowerLevelfulRoom.
func (r Room) GetPowerLevels() *event.PowerLevelsEventContent { return r.PowerLevels }

// Evaluate reports whether evt notifies the user whose rules rs are, and whether it
// highlights.
func Evaluate(rs *pushrules.PushRuleset, room Room, evt *event.Event) (notify, highlight bool) {
	should := rs.GetActions(room, evt).Should()
	return should.Notify, should.Notify && should.Highlight
}
