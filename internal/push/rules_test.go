package push

import (
	"encoding/json"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

func TestDefaultRules(t *testing.T) {
	t.Parallel()
	set, err := DefaultRuleset("@ann:spelt.test")
	rs := Compile(set)
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
