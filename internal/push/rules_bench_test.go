package push

import (
	"encoding/json"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

func BenchmarkEvaluate(b *testing.B) {
	set, err := DefaultRuleset("@ann:spelt.test")
	rs := Compile(set)
	if err != nil {
		b.Fatal(err)
	}
	e := &event.Event{Sender: id.UserID("@bob:spelt.test"), Type: event.Type{Type: "m.room.message"}}
	_ = json.Unmarshal([]byte(`{"msgtype":"m.text","body":"hello there, how are you doing today?"}`), &e.Content)
	room := Room{Displayname: "Ann Lee", Members: 200}
	// One event for 200 members: each member's rules over the same event.
	for b.Loop() {
		ev := NewEvent(e)
		for range 200 {
			ev.Evaluate(rs, room)
		}
	}
}

func BenchmarkDefaultRuleset(b *testing.B) {
	for b.Loop() {
		if _, err := DefaultRuleset("@ann:spelt.test"); err != nil {
			b.Fatal(err)
		}
	}
}
