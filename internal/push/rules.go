// Package push holds the server-default push rules (spec: client-server API, "Push
// Rules", "Predefined Rules") and evaluates them with mautrix's pushrules: which events
// notify a user, and which highlight.
package push

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.mau.fi/util/glob"
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

// Rules are a user's rule set ready to evaluate many events. Conditions are matched by
// mautrix, but each event's evaluation remembers the results of the conditions it
// matched (Event), so that the conditions every user's rules share (most of the
// server-default ones) are matched once per event rather than once per member; and
// the content rules' patterns are compiled once. (mautrix compiles a glob at every
// match, which made one user's evaluation cost about 8 µs.)
type Rules struct {
	set       *pushrules.PushRuleset
	override  []condRule
	underride []condRule
	content   []contentRule
}

// condRule is a rule with conditions, each with the key its result is remembered by.
type condRule struct {
	rule *pushrules.PushRule
	keys []string
}

type contentRule struct {
	rule *pushrules.PushRule
	re   *regexp.Regexp // nil: the pattern does not compile, and nothing matches
}

// Compile prepares rs for evaluation.
func Compile(rs *pushrules.PushRuleset) *Rules {
	r := &Rules{set: rs}
	cond := func(rules pushrules.PushRuleArray) []condRule {
		out := make([]condRule, 0, len(rules))
		for _, rule := range rules {
			c := condRule{rule: rule}
			for _, cd := range rule.Conditions {
				b, _ := json.Marshal(cd) // a condition always marshals
				c.keys = append(c.keys, string(b))
			}
			out = append(out, c)
		}
		return out
	}
	r.override, r.underride = cond(rs.Override), cond(rs.Underride)
	for _, rule := range rs.Content {
		var buf strings.Builder
		// As mautrix and the spec have it: case-insensitive, whole words.
		buf.WriteString(`(?i)\b`)
		if err := glob.ToRegexPattern(rule.Pattern, &buf); err != nil {
			r.content = append(r.content, contentRule{rule: rule})
			continue
		}
		buf.WriteString(`\b`)
		re, _ := regexp.Compile(buf.String())
		r.content = append(r.content, contentRule{rule: rule, re: re})
	}
	return r
}

// legacyMentionRules are disabled for events with m.mentions (spec v1.7).
var legacyMentionRules = map[string]bool{".m.rule.contains_display_name": true, ".m.rule.contains_user_name": true, ".m.rule.roomnotif": true}

// Event is one event being evaluated for the members of its room.
type Event struct {
	evt      *event.Event
	memo     map[string]bool
	body     string
	hasBody  bool
	mentions bool
}

// NewEvent prepares evt for evaluation by the rules of its room's members.
func NewEvent(evt *event.Event) *Event {
	e := &Event{evt: evt, memo: map[string]bool{}}
	e.body, e.hasBody = evt.Content.Raw["body"].(string)
	_, e.mentions = evt.Content.Raw["m.mentions"]
	return e
}

// matches reports whether a rule's conditions all hold, remembering each condition's
// result under its key (and what of the room it depends on).
func (e *Event) matches(c condRule, room Room) bool {
	if !c.rule.Enabled || e.mentions && legacyMentionRules[c.rule.RuleID] {
		return false
	}
	for i, cd := range c.rule.Conditions {
		key := c.keys[i]
		switch cd.Kind {
		case pushrules.KindContainsDisplayName:
			key += "\x00" + room.Displayname
		case pushrules.KindRoomMemberCount:
			key += "\x00" + strconv.Itoa(room.Members)
		}
		ok, known := e.memo[key]
		if !known {
			ok = cd.Match(room, e.evt)
			e.memo[key] = ok
		}
		if !ok {
			return false
		}
	}
	return true
}

// actions returns the actions of the first rule that matches, in the spec's order.
func (e *Event) actions(r *Rules, room Room) pushrules.PushActionArray {
	for _, c := range r.override {
		if e.matches(c, room) {
			return c.rule.Actions
		}
	}
	for _, c := range r.content {
		if c.rule.Enabled && c.re != nil && e.hasBody && !(e.mentions && legacyMentionRules[c.rule.RuleID]) && c.re.MatchString(e.body) {
			return c.rule.Actions
		}
	}
	for _, m := range []pushrules.PushRuleMap{r.set.Room, r.set.Sender} {
		if rule := m.GetMatchingRule(room, e.evt); rule != nil {
			return rule.Actions
		}
	}
	for _, c := range r.underride {
		if e.matches(c, room) {
			return c.rule.Actions
		}
	}
	return nil
}

// Evaluate reports whether the event notifies the user whose rules r are, seeing the
// room as room, and whether it highlights.
func (e *Event) Evaluate(r *Rules, room Room) (notify, highlight bool) {
	should := e.actions(r, room).Should()
	return should.Notify, should.Notify && should.Highlight
}
