package push

import (
	"encoding/json"
	"fmt"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

func BenchmarkEvaluate(b *testing.B) {
	set, err := DefaultRuleset("@ann:spelt.test")
	rs := Compile("@ann:spelt.test", set)
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

// BenchmarkEvaluateMembers is one message judged for the 8 other members of a room,
// each with their own rules and display name (the room send benchmark's rooms).
func BenchmarkEvaluateMembers(b *testing.B) {
	type member struct {
		rules *Rules
		room  Room
	}
	var members []member
	for i := range 8 {
		user := fmt.Sprintf("@bench%d:spelt.test", i)
		set, err := DefaultRuleset(user)
		if err != nil {
			b.Fatal(err)
		}
		members = append(members, member{Compile(user, set), Room{Displayname: fmt.Sprintf("bench%d", i), Members: 9}})
	}
	e := &event.Event{Sender: id.UserID("@bench8:spelt.test"), Type: event.Type{Type: "m.room.message"}}
	_ = json.Unmarshal([]byte(`{"msgtype":"m.text","body":"bench 3 141"}`), &e.Content)
	for b.Loop() {
		ev := NewEvent(e)
		for _, m := range members {
			ev.Evaluate(m.rules, m.room)
		}
	}
}
