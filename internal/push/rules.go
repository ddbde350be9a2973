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
	"sync"

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
// mautrix, but each event's evaluation remembers the results of the conditions every
// user's rules share (most of the server-default ones, each known by a small number),
// so that they are matched once per event rather than once per member. Globs are
// compiled once, with the rules (mautrix compiles a glob at every match), and the
// content rules' plain patterns are matched without regular expressions.
type Rules struct {
	set       *pushrules.PushRuleset
	override  []condRule
	underride []condRule
	content   []contentRule
}

// condRule is a rule with its conditions, ready to match.
type condRule struct {
	rule  *pushrules.PushRule
	conds []cond
}

// cond is a condition with what makes it quick to match: the number its result is
// remembered by within an event (-1: not remembered, the condition is the user's own
// or depends on the room), and for an event_match on a plain key, the key's parts and
// the compiled pattern.
type cond struct {
	c     *pushrules.PushCondition
	id    int32
	field string   // "type", "sender", "room_id", "state_key", or "content" (path)
	path  []string // for "content": the key's parts, escapes resolved
	glob  glob.Glob
	// own is set when this package matches the condition itself: event_match,
	// event_property_is and event_property_contains on such keys, room_member_count.
	own bool
	// countOp and count are a room_member_count condition's, parsed.
	countOp string
	count   int
}

type contentRule struct {
	rule *pushrules.PushRule
	re   *regexp.Regexp // nil: the pattern does not compile, and nothing matches
	// plain is the lower-cased pattern when it is ASCII without wildcards: in an ASCII
	// body it is then looked for as a whole word without the regular expression.
	plain string
}

// sharedConds numbers the conditions that are not one user's own, across all users'
// rules; past maxSharedConds more are not remembered.
var sharedConds = struct {
	sync.Mutex
	ids map[string]int32
}{ids: map[string]int32{}}

const maxSharedConds = 10_000

func sharedCondID(key string) int32 {
	sharedConds.Lock()
	defer sharedConds.Unlock()
	id, ok := sharedConds.ids[key]
	if !ok {
		if len(sharedConds.ids) >= maxSharedConds {
			return -1
		}
		id = int32(len(sharedConds.ids))
		sharedConds.ids[key] = id
	}
	return id
}

// Compile prepares rs, the rules of userID, for evaluation.
func Compile(userID string, rs *pushrules.PushRuleset) *Rules {
	r := &Rules{set: rs}
	quoted, _ := json.Marshal(userID)
	compile := func(rules pushrules.PushRuleArray) []condRule {
		out := make([]condRule, 0, len(rules))
		for _, rule := range rules {
			c := condRule{rule: rule}
			for _, cd := range rule.Conditions {
				k := cond{c: cd, id: -1}
				b, _ := json.Marshal(cd) // a condition always marshals
				switch cd.Kind {
				case pushrules.KindContainsDisplayName, pushrules.KindRoomMemberCount, pushrules.KindSenderNotificationPermission:
					// They depend on the room as the user sees it; cheap to match anyway.
				default:
					if !strings.Contains(string(b), string(quoted)) {
						k.id = sharedCondID(string(b))
					}
				}
				switch cd.Kind {
				case pushrules.KindEventMatch, pushrules.KindEventPropertyIs, pushrules.KindEventPropertyContains:
					k.field, k.path = splitKey(cd.Key)
					k.own = k.field != ""
					if k.own && cd.Kind == pushrules.KindEventMatch {
						k.glob = glob.CompileWithImplicitContains(cd.Pattern)
					}
				case pushrules.KindRoomMemberCount:
					if g := pushrules.MemberCountFilterRegex.FindStringSubmatch(cd.MemberCountCondition); len(g) == 3 {
						k.own, k.countOp = true, g[1]
						k.count, _ = strconv.Atoi(g[2])
					}
				}
				c.conds = append(c.conds, k)
			}
			out = append(out, c)
		}
		return out
	}
	r.override, r.underride = compile(rs.Override), compile(rs.Underride)
	for _, rule := range rs.Content {
		var plain string
		if isPlainASCII(rule.Pattern) {
			plain = strings.ToLower(rule.Pattern)
		}
		var buf strings.Builder
		// As mautrix and the spec have it: case-insensitive, whole words.
		buf.WriteString(`(?i)\b`)
		if err := glob.ToRegexPattern(rule.Pattern, &buf); err != nil {
			r.content = append(r.content, contentRule{rule: rule})
			continue
		}
		buf.WriteString(`\b`)
		re, _ := regexp.Compile(buf.String())
		r.content = append(r.content, contentRule{rule: rule, re: re, plain: plain})
	}
	return r
}

// splitKey splits a condition's key (spec: dots separate parts, a backslash escapes a
// dot or backslash): a top-level field, or "content" and the path into it. field is ""
// for any other key (mautrix matches it).
func splitKey(key string) (field string, path []string) {
	switch key {
	case "type", "sender", "room_id", "state_key":
		return key, nil
	}
	rest, ok := strings.CutPrefix(key, "content.")
	if !ok || rest == "" {
		return "", nil
	}
	var part []byte
	for i := 0; i < len(rest); i++ {
		switch {
		case rest[i] == '.':
			path = append(path, string(part))
			part = part[:0]
		case rest[i] == '\\' && i+1 < len(rest):
			i++
			part = append(part, rest[i])
		default:
			part = append(part, rest[i])
		}
	}
	return "content", append(path, string(part))
}

// lookup finds path in content as mautrix does: when a part is not there, it is joined
// with the next by a dot and looked for again (so "m.relates_to" is found however the
// key was escaped).
func lookup(data map[string]any, path []string) (any, bool) {
	val, ok := data[path[0]]
	if len(path) == 1 {
		return val, ok
	}
	if ok {
		if m, isMap := val.(map[string]any); isMap {
			if v, found := lookup(m, path[1:]); found {
				return v, true
			}
		}
	}
	joined := make([]string, len(path)-1)
	copy(joined, path[1:])
	joined[0] = path[0] + "." + path[1]
	return lookup(data, joined)
}

// isPlainASCII reports whether a content rule's pattern is ASCII without glob
// wildcards.
func isPlainASCII(p string) bool {
	if p == "" {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] >= 0x80 || p[i] == '*' || p[i] == '?' {
			return false
		}
	}
	return true
}

// legacyMentionRules are disabled for events with m.mentions (spec v1.7).
var legacyMentionRules = map[string]bool{".m.rule.contains_display_name": true, ".m.rule.contains_user_name": true, ".m.rule.roomnotif": true}

// Event is one event being evaluated for the members of its room.
type Event struct {
	evt      *event.Event
	memo     map[int32]bool
	body     string
	hasBody  bool
	mentions bool
	// lowerBody is body lower-cased, when body is ASCII ("" and asciiBody false when
	// not): plain content patterns are looked for in it.
	lowerBody string
	asciiBody bool
}

// NewEvent prepares evt for evaluation by the rules of its room's members.
func NewEvent(evt *event.Event) *Event {
	e := &Event{evt: evt, memo: make(map[int32]bool, 16)}
	e.body, e.hasBody = evt.Content.Raw["body"].(string)
	_, e.mentions = evt.Content.Raw["m.mentions"]
	if e.hasBody && isASCII(e.body) {
		e.lowerBody, e.asciiBody = strings.ToLower(e.body), true
	}
	return e
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// matches reports whether a rule's conditions all hold, remembering the results of the
// shared conditions.
func (e *Event) matches(c condRule, room Room) bool {
	if !c.rule.Enabled || e.mentions && legacyMentionRules[c.rule.RuleID] {
		return false
	}
	for _, cd := range c.conds {
		ok, known := false, false
		if cd.id >= 0 {
			ok, known = e.memo[cd.id]
		}
		if !known {
			ok = e.match(cd, room)
			if cd.id >= 0 {
				e.memo[cd.id] = ok
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// match matches one condition: those marked own here, as mautrix would, without its
// allocations and compilations; anything else by mautrix.
func (e *Event) match(cd cond, room Room) bool {
	if !cd.own {
		return cd.c.Match(room, e.evt)
	}
	if cd.c.Kind == pushrules.KindRoomMemberCount {
		n := room.Members
		switch cd.countOp {
		case "==", "":
			return n == cd.count
		case ">":
			return n > cd.count
		case ">=":
			return n >= cd.count
		case "<":
			return n < cd.count
		case "<=":
			return n <= cd.count
		}
		return false
	}
	if cd.field != "content" {
		var s string
		switch cd.field {
		case "type":
			s = e.evt.Type.Type
		case "sender":
			s = e.evt.Sender.String()
		case "room_id":
			s = e.evt.RoomID.String()
		case "state_key":
			if e.evt.StateKey == nil {
				return false
			}
			s = *e.evt.StateKey
		}
		switch cd.c.Kind {
		case pushrules.KindEventMatch:
			return cd.glob != nil && cd.glob.Match(s)
		case pushrules.KindEventPropertyIs:
			return s == cd.c.Value
		}
		return false // a string contains nothing
	}
	val, ok := lookup(e.evt.Content.Raw, cd.path)
	if !ok {
		return false
	}
	switch cd.c.Kind {
	case pushrules.KindEventMatch:
		return cd.glob != nil && cd.glob.Match(stringify(val))
	case pushrules.KindEventPropertyIs:
		return valueEquals(val, cd.c.Value)
	default: // event_property_contains
		items, ok := val.([]any)
		if !ok {
			return false
		}
		for _, item := range items {
			if valueEquals(item, cd.c.Value) {
				return true
			}
		}
		return false
	}
}

// valueEquals compares two JSON values as mautrix does: numbers as integers.
func valueEquals(a, b any) bool {
	if x, ok := integer(a); ok {
		if y, ok := integer(b); ok {
			return x == y
		}
	}
	return a == b
}

func integer(v any) (int64, bool) {
	switch n := v.(type) {
	case float64:
		return int64(n), true
	case float32:
		return int64(n), true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	}
	return 0, false
}

// stringify is a value as an event_match pattern sees it (as mautrix has it, MSC3862).
func stringify(val any) string {
	switch v := val.(type) {
	case string:
		return v
	case nil:
		return "null"
	case float64:
		return strconv.FormatInt(int64(v), 10)
	default:
		return fmt.Sprint(val)
	}
}

// matchContent reports whether a content rule's pattern is in the body, as a whole
// word, ignoring case.
func (e *Event) matchContent(c contentRule) bool {
	if c.re == nil {
		return false
	}
	if c.plain != "" && e.asciiBody {
		return containsWord(e.lowerBody, c.plain)
	}
	return c.re.MatchString(e.body)
}

// containsWord reports whether word is in s between word boundaries (\b: an ASCII
// letter, digit or underscore on one side, something else or the end on the other).
func containsWord(s, word string) bool {
	for from := 0; ; {
		i := strings.Index(s[from:], word)
		if i < 0 {
			return false
		}
		i += from
		end := i + len(word)
		if boundary(s, i) && boundary(s, end) {
			return true
		}
		from = i + 1
	}
}

// boundary reports whether position i of s is a word boundary.
func boundary(s string, i int) bool {
	before := i > 0 && isWordByte(s[i-1])
	after := i < len(s) && isWordByte(s[i])
	return before != after
}

func isWordByte(b byte) bool {
	return b == '_' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}

// actions returns the actions of the first rule that matches, in the spec's order.
func (e *Event) actions(r *Rules, room Room) pushrules.PushActionArray {
	for _, c := range r.override {
		if e.matches(c, room) {
			return c.rule.Actions
		}
	}
	for _, c := range r.content {
		if c.rule.Enabled && e.hasBody && !(e.mentions && legacyMentionRules[c.rule.RuleID]) && e.matchContent(c) {
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
