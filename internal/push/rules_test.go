package push

import (
	"encoding/json"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/pushrules"
)

func TestDefaultRules(t *testing.T) {
	t.Parallel()
	set, err := DefaultRuleset("@ann:spelt.test")
	rs := Compile("@ann:spelt.test", set)
	if err != nil {
		t.Fatal(err)
	}
	pl := &event.PowerLevelsEventContent{Users: map[id.UserID]int{"@mod:spelt.test": 100}}
	big := Room{Displayname: "Ann Lee", Members: 5, PowerLevels: pl}
	dm := Room{Displayname: "Ann Lee", Members: 2, PowerLevels: pl}
	ev := func(sender, typ, content string, stateKey *string) *event.Event {
		e := &event.Event{Sender: id.UserID(sender), Type: event.Type{Type: typ}, StateKey: stateKey}
		if err := json.Unmarshal([]byte(content), &e.Content); err != nil {
			t.Fatal(err)
		}
		return e
	}
	empty, ann := "", "@ann:spelt.test"
	for _, c := range []struct {
		name              string
		room              Room
		evt               *event.Event
		notify, highlight bool
	}{
		{"message", big, ev("@bob:spelt.test", "m.room.message", `{"msgtype":"m.text","body":"hi"}`, nil), true, false},
		{"notice", big, ev("@bob:spelt.test", "m.room.message", `{"msgtype":"m.notice","body":"hi"}`, nil), false, false},
		{"display name", big, ev("@bob:spelt.test", "m.room.message", `{"msgtype":"m.text","body":"hey Ann Lee!"}`, nil), true, true},
		{"user name", big, ev("@bob:spelt.test", "m.room.message", `{"msgtype":"m.text","body":"ann: look"}`, nil), true, true},
		{"mention", big, ev("@bob:spelt.test", "m.room.message", `{"msgtype":"m.text","body":"x","m.mentions":{"user_ids":["@ann:spelt.test"]}}`, nil), true, true},
		{"mentions disable the legacy rules", big, ev("@bob:spelt.test", "m.room.message", `{"msgtype":"m.text","body":"ann","m.mentions":{}}`, nil), true, false},
		{"@room by a moderator", big, ev("@mod:spelt.test", "m.room.message", `{"msgtype":"m.text","body":"@room hi"}`, nil), true, true},
		{"@room by anyone", big, ev("@bob:spelt.test", "m.room.message", `{"msgtype":"m.text","body":"@room hi"}`, nil), true, false},
		{"reaction", big, ev("@bob:spelt.test", "m.reaction", `{}`, nil), false, false},
		{"edit", big, ev("@bob:spelt.test", "m.room.message", `{"msgtype":"m.text","body":"x","m.relates_to":{"rel_type":"m.replace","event_id":"$x"}}`, nil), false, false},
		{"member event", big, ev("@bob:spelt.test", "m.room.member", `{"membership":"join"}`, &empty), false, false},
		{"invite for me", big, ev("@bob:spelt.test", "m.room.member", `{"membership":"invite"}`, &ann), true, false},
		{"encrypted in a big room", big, ev("@bob:spelt.test", "m.room.encrypted", `{}`, nil), true, false},
		{"encrypted one to one", dm, ev("@bob:spelt.test", "m.room.encrypted", `{}`, nil), true, false},
		{"tombstone", big, ev("@mod:spelt.test", "m.room.tombstone", `{}`, &empty), true, true},
		{"topic", big, ev("@bob:spelt.test", "m.room.topic", `{"topic":"x"}`, &empty), false, false},
	} {
		notify, highlight := NewEvent(c.evt).Evaluate(rs, c.room)
		if notify != c.notify || highlight != c.highlight {
			t.Errorf("%s: notify %v highlight %v, want %v %v", c.name, notify, highlight, c.notify, c.highlight)
		}
	}
}

// The evaluation here (memo, own matching of most conditions) judges as mautrix's own
// evaluation of the same rules does, for every member over a mix of events.
func TestEvaluateAsMautrix(t *testing.T) {
	t.Parallel()
	users := []string{"@ann:spelt.test", "@bob:spelt.test", "@x_y:spelt.test", "@café.b:spelt.test"}
	names := []string{"Ann Lee", "bob", "", "Zoë"}
	pl := &event.PowerLevelsEventContent{Users: map[id.UserID]int{"@mod:spelt.test": 100}}
	empty, ann := "", "@ann:spelt.test"
	type ev struct {
		typ, content string
		stateKey     *string
		sender       string
	}
	events := []ev{
		{"m.room.message", `{"msgtype":"m.text","body":"hello ann, and Bob!"}`, nil, "@mod:spelt.test"},
		{"m.room.message", `{"msgtype":"m.text","body":"annie is not ann_b"}`, nil, "@mod:spelt.test"},
		{"m.room.message", `{"msgtype":"m.text","body":"x_y: see Zoë's note"}`, nil, "@mod:spelt.test"},
		{"m.room.message", `{"msgtype":"m.text","body":"ÀNN and ann"}`, nil, "@mod:spelt.test"},
		{"m.room.message", `{"msgtype":"m.text","body":"BOB"}`, nil, "@ann:spelt.test"},
		{"m.room.message", `{"msgtype":"m.notice","body":"ann"}`, nil, "@mod:spelt.test"},
		{"m.room.message", `{"msgtype":"m.text","body":"hey @room"}`, nil, "@mod:spelt.test"},
		{"m.room.message", `{"msgtype":"m.text","body":"hey@roomie"}`, nil, "@bob:spelt.test"},
		{"m.room.message", `{"msgtype":"m.text","body":"x","m.mentions":{"user_ids":["@bob:spelt.test"]}}`, nil, "@mod:spelt.test"},
		{"m.room.message", `{"msgtype":"m.text","body":"x","m.mentions":{"room":true}}`, nil, "@mod:spelt.test"},
		{"m.room.message", `{"msgtype":"m.text","body":"x","m.mentions":{"room":true}}`, nil, "@bob:spelt.test"},
		{"m.room.message", `{"msgtype":"m.text","body":"x","m.relates_to":{"rel_type":"m.replace","event_id":"$x"}}`, nil, "@mod:spelt.test"},
		{"m.room.message", `{"msgtype":"m.text","body":5}`, nil, "@mod:spelt.test"},
		{"m.room.message", `{"msgtype":7}`, nil, "@mod:spelt.test"},
		{"m.room.encrypted", `{}`, nil, "@mod:spelt.test"},
		{"m.call.invite", `{}`, nil, "@mod:spelt.test"},
		{"m.reaction", `{}`, nil, "@mod:spelt.test"},
		{"m.room.member", `{"membership":"invite"}`, &ann, "@mod:spelt.test"},
		{"m.room.member", `{"membership":"join"}`, &empty, "@mod:spelt.test"},
		{"m.room.tombstone", `{}`, &empty, "@mod:spelt.test"},
		{"m.room.server_acl", `{}`, &empty, "@mod:spelt.test"},
		{"m.room.topic", `{"topic":"ann"}`, &empty, "@mod:spelt.test"},
	}
	for _, members := range []int{2, 3, 9} {
		for i, user := range users {
			set, err := DefaultRuleset(user)
			if err != nil {
				t.Fatal(err)
			}
			rs := Compile(user, set)
			room := Room{Displayname: names[i], Members: members, PowerLevels: pl}
			for _, c := range events {
				evt := &event.Event{Sender: id.UserID(c.sender), Type: event.Type{Type: c.typ}, StateKey: c.stateKey, RoomID: "!r:spelt.test"}
				if err := json.Unmarshal([]byte(c.content), &evt.Content); err != nil {
					t.Fatal(err)
				}
				notify, highlight := NewEvent(evt).Evaluate(rs, room)
				var want pushrules.PushActionArray
				if rule := set.GetMatchingRule(room, evt); rule != nil {
					want = rule.Actions
				}
				should := want.Should()
				if notify != should.Notify || highlight != (should.Notify && should.Highlight) {
					t.Errorf("%s (%q, %d members), %s %s: notify %v highlight %v; mautrix: %v %v",
						user, names[i], members, c.typ, c.content, notify, highlight, should.Notify, should.Highlight)
				}
			}
		}
	}
}
