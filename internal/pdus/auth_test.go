package pdus

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	jsonv2 "encoding/json/v2"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// The test users: three of this server (a.test), one of another (b.test).
const (
	alice = "@alice:a.test"
	bob   = "@bob:a.test"
	carol = "@carol:a.test"
	dave  = "@dave:b.test"
)

func ptr(s string) *string { return &s }

// defaultLevels are the power levels of test rooms unless a case sets others: what
// Spelt's createRoom makes.
func defaultLevels() map[string]any {
	return map[string]any{
		"users": map[string]any{alice: 100}, "users_default": 0, "events_default": 0, "state_default": 50,
		"ban": 50, "kick": 50, "redact": 50, "invite": 0,
		"events": map[string]any{"m.room.power_levels": 100}, "notifications": map[string]any{"room": 50},
	}
}

// levels is defaultLevels with some keys replaced (a nil value removes the key).
func levels(over map[string]any) map[string]any {
	l := defaultLevels()
	for k, v := range over {
		if v == nil {
			delete(l, k)
		} else {
			l[k] = v
		}
	}
	return l
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// roomOpts shape a test room.
type roomOpts struct {
	// creator is content.creator in room versions 1 to 10 (default alice, who sends the
	// create event either way); the creator joins first.
	creator string
	// noFederate sets m.federate to false.
	noFederate bool
	// noLevels leaves the room without m.room.power_levels.
	noLevels bool
	// joinRules is the m.room.join_rules content (default public; "-" for none).
	joinRules string
	// roomID is the room's ID (default !room:a.test).
	roomID string
}

// testRoom is a room built event by event with Build and checked with Authorize, as
// commands do: each event's auth events are the current state the auth events
// selection picks.
type testRoom struct {
	t       *testing.T
	v       int
	version string
	id      string
	state   map[StateKey]*Event
	byID    map[string]*Event
	history []*Event
	ts      int64
}

func newTestRoom(t *testing.T, v int, o roomOpts) *testRoom {
	t.Helper()
	r := &testRoom{t: t, v: v, version: strconv.Itoa(v), id: cmp.Or(o.roomID, "!room:a.test"), state: map[StateKey]*Event{}, byID: map[string]*Event{}, ts: 1_700_000_000_000}
	creator := alice
	if o.creator != "" {
		creator = o.creator
	}
	create := map[string]any{"room_version": r.version}
	if v <= 10 {
		create["creator"] = creator
	}
	if o.noFederate {
		create["m.federate"] = false
	}
	r.do(alice, "m.room.create", ptr(""), jsonOf(create))
	r.do(creator, "m.room.member", ptr(creator), `{"membership":"join"}`)
	if !o.noLevels {
		r.do(creator, "m.room.power_levels", ptr(""), jsonOf(defaultLevels()))
	}
	switch o.joinRules {
	case "-":
	case "":
		r.do(creator, "m.room.join_rules", ptr(""), `{"join_rule":"public"}`)
	default:
		r.do(creator, "m.room.join_rules", ptr(""), o.joinRules)
	}
	return r
}

func (r *testRoom) last() *Event { return r.history[len(r.history)-1] }

func (r *testRoom) get(typ, key string) *Event { return r.state[StateKey{Type: typ, StateKey: key}] }

// build makes an event with the given prev and auth events, signed by a.test.
func (r *testRoom) build(p Proto, prev, auth []*Event) *Event {
	r.t.Helper()
	if p.RoomID == "" {
		p.RoomID = r.id
	}
	r.ts++
	p.OriginServerTS = r.ts
	ev, err := Build(r.version, p, RefsOf(prev), auth, int64(len(r.history)+1), signerA)
	if err != nil {
		r.t.Fatalf("build %s: %v", p.Type, err)
	}
	r.byID[ev.ID] = ev
	return ev
}

// selected is the current state p's auth events selection picks.
func (r *testRoom) selected(p Proto) []*Event {
	var auth []*Event
	for _, k := range AuthSelection(r.version, p) {
		if ev := r.state[k]; ev != nil {
			auth = append(auth, ev)
		}
	}
	return auth
}

// event builds the room's next event (not applied).
func (r *testRoom) event(sender, typ string, stateKey *string, content, redacts string) *Event {
	r.t.Helper()
	p := Proto{RoomID: r.id, Sender: sender, Type: typ, StateKey: stateKey, Content: json.RawMessage(content), Redacts: redacts}
	var prev []*Event
	if len(r.history) > 0 {
		prev = []*Event{r.last()}
	}
	return r.build(p, prev, r.selected(p))
}

// authOf is the events ev's auth_events name.
func (r *testRoom) authOf(ev *Event) []*Event {
	var auth []*Event
	for _, id := range ev.PDU.AuthEvents {
		a, ok := r.byID[string(id)]
		if !ok {
			r.t.Fatalf("unknown auth event %s", id)
		}
		auth = append(auth, a)
	}
	return auth
}

func (r *testRoom) check(ev *Event) error { return Authorize(ev, r.authOf(ev), testKeys) }

func (r *testRoom) apply(ev *Event) {
	if k, ok := ev.StateKey(); ok {
		r.state[StateKey{Type: ev.Type(), StateKey: k}] = ev
	}
	r.history = append(r.history, ev)
}

// do builds an event the rules must allow and applies it.
func (r *testRoom) do(sender, typ string, stateKey *string, content string) *Event {
	r.t.Helper()
	ev := r.event(sender, typ, stateKey, content, "")
	if err := r.check(ev); err != nil {
		r.t.Fatalf("setup: %s %s by %s: %v", typ, content, sender, err)
	}
	r.apply(ev)
	return ev
}

func (r *testRoom) member(sender, target, content string) *Event {
	r.t.Helper()
	return r.event(sender, "m.room.member", ptr(target), content, "")
}

func (r *testRoom) setMember(sender, target, membership string) *Event {
	r.t.Helper()
	return r.do(sender, "m.room.member", ptr(target), jsonOf(map[string]string{"membership": membership}))
}

func (r *testRoom) join(users ...string) {
	r.t.Helper()
	for _, u := range users {
		r.setMember(u, u, "join")
	}
}

func (r *testRoom) setLevels(over map[string]any) {
	r.t.Helper()
	r.do(alice, "m.room.power_levels", ptr(""), jsonOf(levels(over)))
}

func (r *testRoom) setJoinRules(content string) {
	r.t.Helper()
	r.do(alice, "m.room.join_rules", ptr(""), content)
}

func (r *testRoom) message(sender string) *Event {
	r.t.Helper()
	return r.event(sender, "m.room.message", nil, `{"msgtype":"m.text","body":"hello"}`, "")
}

// redaction builds a redaction of target in the room version's format.
func (r *testRoom) redaction(sender, target string) *Event {
	r.t.Helper()
	content := `{}`
	if r.v >= 11 {
		content = jsonOf(map[string]string{"redacts": target})
	}
	return r.event(sender, "m.room.redaction", nil, content, target)
}

// cosign adds server's signature to ev (room versions 3 and later).
func (r *testRoom) cosign(ev *Event, server string, key ed25519.PrivateKey) *Event {
	r.t.Helper()
	var p pdu.PDU
	if err := jsonv2.Unmarshal(ev.Raw, &p); err != nil {
		r.t.Fatal(err)
	}
	if err := p.Sign(id.RoomVersion(r.version), server, keyID, key); err != nil {
		r.t.Fatal(err)
	}
	raw, err := jsonv2.Marshal(&p)
	if err != nil {
		r.t.Fatal(err)
	}
	out, err := Parse(r.version, ev.ID, raw)
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// authCase is one rule: in the versions it applies to, the event is allowed (ok) or
// rejected.
type authCase struct {
	name  string
	when  func(v int) bool // nil: every room version
	opts  roomOpts
	setup func(r *testRoom)
	event func(r *testRoom) *Event
	ok    bool
}

func from(n int) func(int) bool       { return func(v int) bool { return v >= n } }
func upTo(n int) func(int) bool       { return func(v int) bool { return v <= n } }
func between(a, b int) func(int) bool { return func(v int) bool { return v >= a && v <= b } }

func runAuthCases(t *testing.T, cases []authCase) {
	t.Helper()
	for v := 1; v <= 11; v++ {
		for _, c := range cases {
			if c.when != nil && !c.when(v) {
				continue
			}
			t.Run(fmt.Sprintf("v%d/%s", v, c.name), func(t *testing.T) {
				t.Parallel()
				r := newTestRoom(t, v, c.opts)
				if c.setup != nil {
					c.setup(r)
				}
				ev := c.event(r)
				err := r.check(ev)
				var ae *AuthError
				switch {
				case c.ok && err != nil:
					t.Fatalf("rejected: %v\nevent: %s", err, ev.Raw)
				case !c.ok && err == nil:
					t.Fatalf("allowed, want a rejection\nevent: %s", ev.Raw)
				case !c.ok && !errors.As(err, &ae):
					t.Fatalf("err = %T %v, want *AuthError", err, err)
				}
			})
		}
	}
}

// TestAuthCreate: rule 1, m.room.create.
func TestAuthCreate(t *testing.T) {
	t.Parallel()
	create := func(v int, roomID string, content map[string]any, prev []*Event) (*Event, error) {
		p := Proto{RoomID: roomID, Sender: alice, Type: "m.room.create", StateKey: ptr(""), Content: json.RawMessage(jsonOf(content))}
		ev, err := Build(strconv.Itoa(v), p, RefsOf(prev), nil, 1, signerA)
		if err != nil {
			return nil, err
		}
		return ev, Authorize(ev, nil, testKeys)
	}
	content := func(v int, extra map[string]any) map[string]any {
		c := map[string]any{"room_version": strconv.Itoa(v)}
		if v <= 10 {
			c["creator"] = alice
		}
		maps.Copy(c, extra)
		return c
	}
	for v := 1; v <= 11; v++ {
		t.Run("v"+strconv.Itoa(v), func(t *testing.T) {
			t.Parallel()
			ok := func(name string, ev *Event, err error) {
				t.Helper()
				if err != nil {
					t.Errorf("%s: rejected: %v", name, err)
				}
			}
			rejected := func(name string, ev *Event, err error) {
				t.Helper()
				var ae *AuthError
				if !errors.As(err, &ae) {
					t.Errorf("%s: err = %v, want a rejection", name, err)
				}
			}
			first, err := create(v, "!r:a.test", content(v, nil), nil)
			ok("plain create", first, err)
			ev, err := create(v, "!r:a.test", content(v, nil), []*Event{first})
			rejected("create with prev_events", ev, err)
			ev, err = create(v, "!r:b.test", content(v, nil), nil)
			rejected("room ID of another server than the sender's", ev, err)
			ev, err = create(v, "!r:a.test", content(v, map[string]any{"room_version": "99"}), nil)
			rejected("content.room_version unknown", ev, err)
			ev, err = create(v, "!r:a.test", content(v, map[string]any{"room_version": 5}), nil)
			rejected("content.room_version not a string", ev, err)
			c := content(v, nil)
			delete(c, "room_version")
			ev, err = create(v, "!r:a.test", c, nil)
			ok("content.room_version absent", ev, err)
			c = content(v, nil)
			delete(c, "creator")
			ev, err = create(v, "!r:a.test", c, nil)
			if v <= 10 {
				rejected("no creator (v1-10)", ev, err)
			} else {
				ok("no creator (v11)", ev, err)
			}
		})
	}
}

// TestAuthEventsRules: the rules on auth_events (v1 rule 2) and m.federate (rule 3).
func TestAuthEventsRules(t *testing.T) {
	t.Parallel()
	msg := func(r *testRoom, auth []*Event) *Event {
		return r.build(Proto{Sender: alice, Type: "m.room.message", Content: json.RawMessage(`{"body":"x"}`)}, []*Event{r.last()}, auth)
	}
	runAuthCases(t, []authCase{
		{name: "auth events as selected", ok: true, event: func(r *testRoom) *Event {
			return msg(r, []*Event{r.get("m.room.create", ""), r.get("m.room.power_levels", ""), r.get("m.room.member", alice)})
		}},
		{name: "no create event among the auth events", event: func(r *testRoom) *Event {
			return msg(r, []*Event{r.get("m.room.power_levels", ""), r.get("m.room.member", alice)})
		}},
		{name: "duplicate type and state key", event: func(r *testRoom) *Event {
			again := r.member(alice, alice, `{"membership":"join","displayname":"A"}`)
			return msg(r, []*Event{r.get("m.room.create", ""), r.get("m.room.member", alice), again})
		}},
		{name: "auth event the selection does not pick", event: func(r *testRoom) *Event {
			return msg(r, []*Event{r.get("m.room.create", ""), r.get("m.room.member", alice), r.get("m.room.join_rules", "")})
		}},
		{name: "auth event of another room", event: func(r *testRoom) *Event {
			pl := newTestRoom(r.t, r.v, roomOpts{roomID: "!other:a.test"}).get("m.room.power_levels", "")
			r.byID[pl.ID] = pl
			return msg(r, []*Event{r.get("m.room.create", ""), pl, r.get("m.room.member", alice)})
		}},
		{name: "m.federate false: a user of the creator's server joins", opts: roomOpts{noFederate: true}, ok: true,
			event: func(r *testRoom) *Event { return r.member(bob, bob, `{"membership":"join"}`) }},
		{name: "m.federate false: a user of another server joins", opts: roomOpts{noFederate: true},
			event: func(r *testRoom) *Event { return r.member(dave, dave, `{"membership":"join"}`) }},
		{name: "m.federate absent: a user of another server joins", ok: true,
			event: func(r *testRoom) *Event { return r.member(dave, dave, `{"membership":"join"}`) }},
	})
}

// TestAuthJoin: membership join and the join rules public, invite, knock (v7+),
// restricted (v8+) and knock_restricted (v10+).
func TestAuthJoin(t *testing.T) {
	t.Parallel()
	join := func(u string) func(r *testRoom) *Event {
		return func(r *testRoom) *Event { return r.member(u, u, `{"membership":"join"}`) }
	}
	inviteBob := func(r *testRoom) { r.setMember(alice, bob, "invite") }
	const allowOther = `"allow":[{"type":"m.room_membership","room_id":"!other:a.test"}]`
	restricted := `{"join_rule":"restricted",` + allowOther + `}`
	knockRestricted := `{"join_rule":"knock_restricted",` + allowOther + `}`
	via := func(authoriser string) func(r *testRoom) *Event {
		return func(r *testRoom) *Event {
			return r.member(bob, bob, jsonOf(map[string]string{"membership": "join", "join_authorised_via_users_server": authoriser}))
		}
	}
	runAuthCases(t, []authCase{
		{name: "creator's first join after the create event", ok: true, opts: roomOpts{noLevels: true, joinRules: "-"},
			event: func(r *testRoom) *Event { return r.last() }},
		{name: "public: anyone joins", ok: true, event: join(bob)},
		{name: "join for another user", event: func(r *testRoom) *Event { return r.member(alice, bob, `{"membership":"join"}`) }},
		{name: "public: banned user joins", setup: func(r *testRoom) { r.setMember(alice, bob, "ban") }, event: join(bob)},
		{name: "public: unbanned user joins", ok: true, setup: func(r *testRoom) {
			r.setMember(alice, bob, "ban")
			r.setMember(alice, bob, "leave")
		}, event: join(bob)},
		{name: "no membership in content", event: func(r *testRoom) *Event { return r.member(bob, bob, `{}`) }},
		{name: "invite: uninvited user joins", opts: roomOpts{joinRules: `{"join_rule":"invite"}`}, event: join(bob)},
		{name: "invite: invited user joins", ok: true, opts: roomOpts{joinRules: `{"join_rule":"invite"}`}, setup: inviteBob, event: join(bob)},
		{name: "invite: joined user joins again", ok: true, opts: roomOpts{joinRules: `{"join_rule":"invite"}`},
			event: func(r *testRoom) *Event { return r.member(alice, alice, `{"membership":"join","displayname":"A"}`) }},
		{name: "no join rules: uninvited user joins", opts: roomOpts{joinRules: "-"}, event: join(bob)},
		{name: "private join rule", opts: roomOpts{joinRules: `{"join_rule":"private"}`}, setup: inviteBob, event: join(bob)},
		{name: "knock rule: invited user joins", when: from(7), ok: true, opts: roomOpts{joinRules: `{"join_rule":"knock"}`}, setup: inviteBob, event: join(bob)},
		{name: "knock rule: uninvited user joins", when: from(7), opts: roomOpts{joinRules: `{"join_rule":"knock"}`}, event: join(bob)},
		{name: "knock rule unknown before v7: invited user joins", when: upTo(6), opts: roomOpts{joinRules: `{"join_rule":"knock"}`}, setup: inviteBob, event: join(bob)},

		// Restricted rooms (v8+): join_authorised_via_users_server names a joined user
		// who may invite, and that user's server signs the join.
		{name: "restricted: authorised by a joined member who may invite", when: from(8), ok: true, opts: roomOpts{joinRules: restricted}, event: via(alice)},
		{name: "restricted: no authoriser", when: from(8), opts: roomOpts{joinRules: restricted}, event: join(bob)},
		{name: "restricted: invited user joins without authoriser", when: from(8), ok: true, opts: roomOpts{joinRules: restricted}, setup: inviteBob, event: join(bob)},
		{name: "restricted: authoriser below the invite level", when: from(8), opts: roomOpts{joinRules: restricted},
			setup: func(r *testRoom) {
				r.setLevels(map[string]any{"invite": 50})
				r.setJoinRules(`{"join_rule":"public"}`)
				r.join(carol)
				r.setJoinRules(restricted)
			},
			event: via(carol)},
		{name: "restricted: authoriser at the invite level", when: from(8), ok: true, opts: roomOpts{joinRules: restricted},
			setup: func(r *testRoom) {
				r.setLevels(map[string]any{"invite": 50, "users": map[string]any{alice: 100, carol: 50}})
				r.setJoinRules(`{"join_rule":"public"}`)
				r.join(carol)
				r.setJoinRules(restricted)
			},
			event: via(carol)},
		{name: "restricted: authoriser not joined", when: from(8), opts: roomOpts{joinRules: restricted},
			setup: func(r *testRoom) { r.setLevels(map[string]any{"users": map[string]any{alice: 100, carol: 100}}) }, event: via(carol)},
		{name: "restricted: authoriser's server did not sign", when: from(8), opts: roomOpts{joinRules: restricted},
			setup: func(r *testRoom) { r.setJoinRules(`{"join_rule":"public"}`); r.join(dave); r.setJoinRules(restricted) }, event: via(dave)},
		{name: "restricted: authoriser's server signed too", when: from(8), ok: true, opts: roomOpts{joinRules: restricted},
			setup: func(r *testRoom) { r.setJoinRules(`{"join_rule":"public"}`); r.join(dave); r.setJoinRules(restricted) },
			event: func(r *testRoom) *Event { return r.cosign(via(dave)(r), "b.test", keyB) }},
		{name: "restricted: signature of an unknown key", when: from(8), opts: roomOpts{joinRules: restricted},
			setup: func(r *testRoom) { r.setJoinRules(`{"join_rule":"public"}`); r.join(dave); r.setJoinRules(restricted) },
			event: func(r *testRoom) *Event { return r.cosign(via(dave)(r), "b.test", keyA) }},
		{name: "restricted unknown before v8: authorised join", when: upTo(7), opts: roomOpts{joinRules: restricted}, event: via(alice)},
		{name: "restricted unknown before v8: invited user joins", when: upTo(7), opts: roomOpts{joinRules: restricted}, setup: inviteBob, event: join(bob)},
		{name: "public: unsigned join_authorised_via_users_server, meaningless before v8", when: upTo(7), ok: true, event: via(dave)},
		{name: "public: unsigned join_authorised_via_users_server", when: from(8), event: via(dave)},
		{name: "public: signed join_authorised_via_users_server", when: from(8), ok: true, event: via(alice)},

		{name: "knock_restricted: authorised join", when: from(10), ok: true, opts: roomOpts{joinRules: knockRestricted}, event: via(alice)},
		{name: "knock_restricted: no authoriser", when: from(10), opts: roomOpts{joinRules: knockRestricted}, event: join(bob)},
		{name: "knock_restricted: authoriser not joined", when: from(10), opts: roomOpts{joinRules: knockRestricted},
			setup: func(r *testRoom) { r.setLevels(map[string]any{"users": map[string]any{alice: 100, carol: 100}}) }, event: via(carol)},
		{name: "knock_restricted: invited user joins", when: from(10), ok: true, opts: roomOpts{joinRules: knockRestricted}, setup: inviteBob, event: join(bob)},
		{name: "knock_restricted unknown before v10: authorised join", when: upTo(9), opts: roomOpts{joinRules: knockRestricted}, event: via(alice)},
	})
}

// TestAuthKnock: membership knock (v7+; knock_restricted from v10).
func TestAuthKnock(t *testing.T) {
	t.Parallel()
	knock := func(u string) func(r *testRoom) *Event {
		return func(r *testRoom) *Event { return r.member(u, u, `{"membership":"knock"}`) }
	}
	knockRule := roomOpts{joinRules: `{"join_rule":"knock"}`}
	runAuthCases(t, []authCase{
		{name: "knock on a knock room", when: from(7), ok: true, opts: knockRule, event: knock(bob)},
		{name: "knock before v7", when: upTo(6), opts: knockRule, event: knock(bob)},
		{name: "knock on an invite room", when: from(7), opts: roomOpts{joinRules: `{"join_rule":"invite"}`}, event: knock(bob)},
		{name: "knock on a public room", when: from(7), event: knock(bob)},
		{name: "knock for another user", when: from(7), opts: knockRule, event: func(r *testRoom) *Event { return r.member(alice, bob, `{"membership":"knock"}`) }},
		{name: "knock while joined", when: from(7), opts: knockRule, event: knock(alice)},
		{name: "knock while invited", when: from(7), opts: knockRule, setup: func(r *testRoom) { r.setMember(alice, bob, "invite") }, event: knock(bob)},
		{name: "knock while banned", when: from(7), opts: knockRule, setup: func(r *testRoom) { r.setMember(alice, bob, "ban") }, event: knock(bob)},
		{name: "knock after leaving", when: from(7), ok: true, opts: knockRule, setup: func(r *testRoom) {
			r.setMember(alice, bob, "invite")
			r.setMember(bob, bob, "leave")
		}, event: knock(bob)},
		{name: "knock on knock_restricted", when: from(10), ok: true, opts: roomOpts{joinRules: `{"join_rule":"knock_restricted","allow":[]}`}, event: knock(bob)},
		{name: "knock on knock_restricted before v10", when: between(7, 9), opts: roomOpts{joinRules: `{"join_rule":"knock_restricted","allow":[]}`}, event: knock(bob)},
		{name: "knocker withdraws the knock", when: from(7), ok: true, opts: knockRule, setup: func(r *testRoom) { r.setMember(bob, bob, "knock") },
			event: func(r *testRoom) *Event { return r.member(bob, bob, `{"membership":"leave"}`) }},
		{name: "knocker is invited", when: from(7), ok: true, opts: knockRule, setup: func(r *testRoom) { r.setMember(bob, bob, "knock") },
			event: func(r *testRoom) *Event { return r.member(alice, bob, `{"membership":"invite"}`) }},
		{name: "knocker joins without invite", when: from(7), opts: knockRule, setup: func(r *testRoom) { r.setMember(bob, bob, "knock") },
			event: func(r *testRoom) *Event { return r.member(bob, bob, `{"membership":"join"}`) }},
	})
}

// TestAuthInvite: membership invite, without third-party invites.
func TestAuthInvite(t *testing.T) {
	t.Parallel()
	invite := func(sender, target string) func(r *testRoom) *Event {
		return func(r *testRoom) *Event { return r.member(sender, target, `{"membership":"invite"}`) }
	}
	runAuthCases(t, []authCase{
		{name: "member invites", ok: true, event: invite(alice, bob)},
		{name: "member at invite level 0 invites", ok: true, setup: func(r *testRoom) { r.join(bob) }, event: invite(bob, carol)},
		{name: "non-member invites", event: invite(carol, bob)},
		{name: "invitee already joined", setup: func(r *testRoom) { r.join(bob) }, event: invite(alice, bob)},
		{name: "invitee banned", setup: func(r *testRoom) { r.setMember(alice, bob, "ban") }, event: invite(alice, bob)},
		{name: "inviter below the invite level", setup: func(r *testRoom) { r.join(bob); r.setLevels(map[string]any{"invite": 50}) }, event: invite(bob, carol)},
		{name: "inviter at the invite level", ok: true, setup: func(r *testRoom) {
			r.join(bob)
			r.setLevels(map[string]any{"invite": 50, "users": map[string]any{alice: 100, bob: 50}})
		}, event: invite(bob, carol)},
		{name: "unknown membership", event: func(r *testRoom) *Event { return r.member(alice, bob, `{"membership":"befriend"}`) }},
	})
}

// TestAuthThirdPartyInvite: m.room.third_party_invite (rule 7 in v1) and invites with
// content.third_party_invite signed by an identity server's key.
func TestAuthThirdPartyInvite(t *testing.T) {
	t.Parallel()
	idKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	idKey2 := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, ed25519.SeedSize))
	wrongKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, ed25519.SeedSize))
	pub := func(k ed25519.PrivateKey) string {
		return base64.RawStdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
	}
	// urlKey is a key whose unpadded base64 differs from its URL-safe form, published
	// URL-safe as some identity servers do.
	var urlKey ed25519.PrivateKey
	for seed := byte(10); urlKey == nil; seed++ {
		k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
		if strings.ContainsAny(pub(k), "+/") {
			urlKey = k
		}
	}
	tpiURLSafe := jsonOf(map[string]any{"display_name": "b...", "key_validity_url": "https://id.test/isvalid",
		"public_key": base64.RawURLEncoding.EncodeToString(urlKey.Public().(ed25519.PublicKey))})
	tpi := jsonOf(map[string]any{
		"display_name": "b...@example.org", "key_validity_url": "https://id.test/_matrix/identity/v2/pubkey/isvalid",
		"public_key":  pub(idKey),
		"public_keys": []any{map[string]any{"public_key": pub(idKey2), "key_validity_url": "https://id.test/_matrix/identity/v2/pubkey/isvalid"}},
	})
	sendTPI := func(r *testRoom) { r.do(alice, "m.room.third_party_invite", ptr("tok"), tpi) }
	// signedInvite is the invite the identity server's signed object makes.
	signedInvite := func(sender, target, mxid, token string, key ed25519.PrivateKey) func(r *testRoom) *Event {
		return func(r *testRoom) *Event {
			signed := map[string]any{"mxid": mxid, "token": token, "sender": sender}
			sig := ed25519.Sign(key, canonical(r.t, signed))
			signed["signatures"] = map[string]any{"id.test": map[string]any{"ed25519:0": base64.RawStdEncoding.EncodeToString(sig)}}
			return r.member(sender, target, jsonOf(map[string]any{"membership": "invite",
				"third_party_invite": map[string]any{"display_name": "b...@example.org", "signed": signed}}))
		}
	}
	runAuthCases(t, []authCase{
		{name: "third_party_invite event at the invite level", ok: true, event: func(r *testRoom) *Event {
			return r.event(alice, "m.room.third_party_invite", ptr("tok"), tpi, "")
		}},
		{name: "third_party_invite event below the invite level", setup: func(r *testRoom) { r.join(bob); r.setLevels(map[string]any{"invite": 50}) },
			event: func(r *testRoom) *Event { return r.event(bob, "m.room.third_party_invite", ptr("tok"), tpi, "") }},
		{name: "third_party_invite event by a non-member", event: func(r *testRoom) *Event {
			return r.event(carol, "m.room.third_party_invite", ptr("tok"), tpi, "")
		}},
		{name: "invite signed with public_key", ok: true, setup: sendTPI, event: signedInvite(alice, bob, bob, "tok", idKey)},
		{name: "invite signed with a key of public_keys", ok: true, setup: sendTPI, event: signedInvite(alice, bob, bob, "tok", idKey2)},
		{name: "invite signed with a key published in URL-safe base64", ok: true,
			setup: func(r *testRoom) { r.do(alice, "m.room.third_party_invite", ptr("tok"), tpiURLSafe) }, event: signedInvite(alice, bob, bob, "tok", urlKey)},
		{name: "invite signed with another key", setup: sendTPI, event: signedInvite(alice, bob, bob, "tok", wrongKey)},
		{name: "invite whose signed mxid is another user", setup: sendTPI, event: signedInvite(alice, bob, carol, "tok", idKey)},
		{name: "invite sent by another member than the third_party_invite's sender", setup: func(r *testRoom) { sendTPI(r); r.join(carol) },
			event: signedInvite(carol, bob, bob, "tok", idKey)},
		{name: "invite with a token no third_party_invite has", setup: sendTPI, event: signedInvite(alice, bob, bob, "other", idKey)},
		{name: "invite of a banned user", setup: func(r *testRoom) { sendTPI(r); r.setMember(alice, bob, "ban") }, event: signedInvite(alice, bob, bob, "tok", idKey)},
		{name: "invite without signed", setup: sendTPI, event: func(r *testRoom) *Event {
			return r.member(alice, bob, `{"membership":"invite","third_party_invite":{"display_name":"b"}}`)
		}},
		{name: "invite whose signature was made over other content", setup: sendTPI, event: func(r *testRoom) *Event {
			ev := signedInvite(alice, bob, bob, "tok", idKey)(r)
			tampered := bytes.Replace(ev.PDU.Content, []byte(`"sender":"@alice:a.test"`), []byte(`"sender":"@carol:a.test"`), 1)
			return r.member(alice, bob, string(tampered))
		}},
	})
}

// TestAuthLeaveKickBan: membership leave (own and kicks), ban and unban.
func TestAuthLeaveKickBan(t *testing.T) {
	t.Parallel()
	leave := func(sender, target string) func(r *testRoom) *Event {
		return func(r *testRoom) *Event { return r.member(sender, target, `{"membership":"leave"}`) }
	}
	ban := func(sender, target string) func(r *testRoom) *Event {
		return func(r *testRoom) *Event { return r.member(sender, target, `{"membership":"ban"}`) }
	}
	joined := func(r *testRoom) { r.join(bob, carol) }
	mods := func(over map[string]any) func(r *testRoom) {
		return func(r *testRoom) { r.join(bob, carol); r.setLevels(over) }
	}
	runAuthCases(t, []authCase{
		{name: "joined user leaves", ok: true, setup: joined, event: leave(bob, bob)},
		{name: "invited user rejects the invite", ok: true, setup: func(r *testRoom) { r.setMember(alice, bob, "invite") }, event: leave(bob, bob)},
		{name: "user never in the room leaves", event: leave(bob, bob)},
		{name: "banned user leaves", setup: func(r *testRoom) { r.setMember(alice, bob, "ban") }, event: leave(bob, bob)},
		{name: "kick by a user at the kick level above the target", ok: true, setup: joined, event: leave(alice, bob)},
		{name: "kick by a user below the kick level", setup: joined, event: leave(bob, carol)},
		{name: "kick of a user at the kicker's level", setup: mods(map[string]any{"users": map[string]any{alice: 100, bob: 50, carol: 50}}), event: leave(bob, carol)},
		{name: "kick of a user below the kicker's level", ok: true, setup: mods(map[string]any{"users": map[string]any{alice: 100, bob: 50, carol: 49}}), event: leave(bob, carol)},
		{name: "kick by a non-member", setup: func(r *testRoom) {
			r.join(bob)
			r.setLevels(map[string]any{"users": map[string]any{alice: 100, carol: 100}})
		}, event: leave(carol, bob)},
		{name: "kick of an invited user", ok: true, setup: func(r *testRoom) { r.setMember(alice, bob, "invite") }, event: leave(alice, bob)},
		{name: "ban by a user at the ban level above the target", ok: true, setup: joined, event: ban(alice, bob)},
		{name: "ban of a user not in the room", ok: true, event: ban(alice, bob)},
		{name: "ban by a user below the ban level", setup: joined, event: ban(bob, carol)},
		{name: "ban of a user at the banner's level", setup: mods(map[string]any{"users": map[string]any{alice: 100, bob: 50, carol: 50}}), event: ban(bob, carol)},
		{name: "ban of a user above the banner's level", setup: mods(map[string]any{"users": map[string]any{alice: 100, bob: 50}}), event: ban(bob, alice)},
		{name: "ban by a non-member", setup: func(r *testRoom) {
			r.join(bob)
			r.setLevels(map[string]any{"users": map[string]any{alice: 100, carol: 100}})
		}, event: ban(carol, bob)},
		{name: "unban by a user at the ban level", ok: true, setup: func(r *testRoom) { r.join(carol); r.setMember(alice, carol, "ban") }, event: leave(alice, carol)},
		{name: "unban by a user at the kick level but below the ban level", setup: func(r *testRoom) {
			r.join(bob, carol)
			r.setLevels(map[string]any{"ban": 75, "kick": 50, "users": map[string]any{alice: 100, bob: 60}})
			r.setMember(alice, carol, "ban")
		}, event: leave(bob, carol)},
		{name: "unban by a user at the ban level and above the target", ok: true, setup: func(r *testRoom) {
			r.join(bob, carol)
			r.setLevels(map[string]any{"ban": 75, "kick": 50, "users": map[string]any{alice: 100, bob: 75}})
			r.setMember(alice, carol, "ban")
		}, event: leave(bob, carol)},
	})
}

// TestAuthEvents: the rules for every other event: membership (rule 6 in v1), the
// required power level (8), state keys of users (9), m.room.aliases (4, v1-5 only)
// and redactions (11, v1-2 only).
func TestAuthEvents(t *testing.T) {
	t.Parallel()
	msg := func(u string) func(r *testRoom) *Event { return func(r *testRoom) *Event { return r.message(u) } }
	state := func(u, typ, key string) func(r *testRoom) *Event {
		return func(r *testRoom) *Event {
			return r.event(u, typ, ptr(key), `{"topic":"x","aliases":["#a:a.test"]}`, "")
		}
	}
	aliases := func(u string, key *string) func(r *testRoom) *Event {
		return func(r *testRoom) *Event { return r.event(u, "m.room.aliases", key, `{"aliases":["#a:a.test"]}`, "") }
	}
	// Redaction targets: event IDs of this server and of another (v1-2), or a hash.
	localID, remoteID, hashID := "$target:a.test", "$target:b.test", "$"+base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	redact := func(u, target string) func(r *testRoom) *Event {
		return func(r *testRoom) *Event { return r.redaction(u, target) }
	}
	joinBob := func(r *testRoom) { r.join(bob) }
	runAuthCases(t, []authCase{
		{name: "member sends a message", ok: true, setup: joinBob, event: msg(bob)},
		{name: "non-member sends a message", event: msg(bob)},
		{name: "invited user sends a message", setup: func(r *testRoom) { r.setMember(alice, bob, "invite") }, event: msg(bob)},
		{name: "user who left sends a message", setup: func(r *testRoom) { r.join(bob); r.setMember(bob, bob, "leave") }, event: msg(bob)},
		{name: "message below events_default", setup: func(r *testRoom) { r.join(bob); r.setLevels(map[string]any{"events_default": 10}) }, event: msg(bob)},
		{name: "message at events_default", ok: true, setup: func(r *testRoom) {
			r.join(bob)
			r.setLevels(map[string]any{"events_default": 10, "users": map[string]any{alice: 100, bob: 10}})
		}, event: msg(bob)},
		{name: "message below its type's level", setup: func(r *testRoom) {
			r.join(bob)
			r.setLevels(map[string]any{"events": map[string]any{"m.room.message": 20}, "users": map[string]any{alice: 100, bob: 10}})
		}, event: msg(bob)},
		{name: "state event below state_default", setup: joinBob, event: state(bob, "m.room.topic", "")},
		{name: "state event at state_default", ok: true, setup: func(r *testRoom) {
			r.join(bob)
			r.setLevels(map[string]any{"users": map[string]any{alice: 100, bob: 50}})
		}, event: state(bob, "m.room.topic", "")},
		{name: "state event at its type's level below state_default", ok: true, setup: func(r *testRoom) {
			r.join(bob)
			r.setLevels(map[string]any{"events": map[string]any{"m.room.topic": 0}})
		}, event: state(bob, "m.room.topic", "")},
		{name: "state key of another user", setup: func(r *testRoom) { r.join(bob); r.setLevels(map[string]any{"state_default": 0}) },
			event: state(bob, "org.example.status", carol)},
		{name: "state key of the sender", ok: true, setup: func(r *testRoom) { r.join(bob); r.setLevels(map[string]any{"state_default": 0}) },
			event: state(bob, "org.example.status", bob)},
		{name: "no power levels: creator sends state", ok: true, opts: roomOpts{noLevels: true}, event: state(alice, "m.room.topic", "")},
		{name: "no power levels: member sends state", opts: roomOpts{noLevels: true}, setup: joinBob, event: state(bob, "m.room.topic", "")},
		{name: "no power levels: member sends a message", ok: true, opts: roomOpts{noLevels: true}, setup: joinBob, event: msg(bob)},
		{name: "no power levels: content.creator has 100", when: upTo(10), ok: true, opts: roomOpts{noLevels: true, creator: carol},
			event: state(carol, "m.room.topic", "")},
		{name: "no power levels: the create event's sender is not the creator", when: upTo(10), opts: roomOpts{noLevels: true, creator: carol},
			setup: func(r *testRoom) { r.join(alice) }, event: state(alice, "m.room.topic", "")},

		// m.room.aliases: allowed whenever the state key is the sender's server in
		// v1-5 (rule 4), an ordinary state event from v6.
		{name: "aliases of the sender's server by a non-member", when: upTo(5), ok: true, event: aliases(bob, ptr("a.test"))},
		{name: "aliases of another server", when: upTo(5), event: aliases(alice, ptr("b.test"))},
		{name: "aliases without a state key", when: upTo(5), event: aliases(alice, nil)},
		{name: "aliases of another server, m.federate false", when: upTo(5), opts: roomOpts{noFederate: true}, event: aliases(dave, ptr("b.test"))},
		{name: "aliases by a non-member", when: from(6), event: aliases(bob, ptr("a.test"))},
		{name: "aliases by a member below state_default", when: from(6), setup: joinBob, event: aliases(bob, ptr("a.test"))},
		{name: "aliases of another server by a member at state_default", when: from(6), ok: true, event: aliases(alice, ptr("b.test"))},

		// Redactions: v1-2 need the redact level or an event of the redaction's
		// server; from v3 the auth rules treat them as any event.
		{name: "redaction of an event of the same server", when: upTo(2), ok: true, setup: joinBob, event: redact(bob, localID)},
		{name: "redaction of another server's event below the redact level", when: upTo(2), setup: joinBob, event: redact(bob, remoteID)},
		{name: "redaction of another server's event at the redact level", when: upTo(2), ok: true, event: redact(alice, remoteID)},
		{name: "redaction by a non-member", when: upTo(2), event: redact(bob, localID)},
		{name: "redaction below the redact level", when: from(3), ok: true, setup: joinBob, event: redact(bob, hashID)},
		{name: "redaction by a non-member", when: from(3), event: redact(bob, hashID)},
		{name: "redaction below the m.room.redaction level", when: from(3), setup: func(r *testRoom) {
			r.join(bob)
			r.setLevels(map[string]any{"events": map[string]any{"m.room.redaction": 10}})
		}, event: redact(bob, hashID)},
	})
}

// TestAuthPowerLevels: m.room.power_levels (rule 10 in v1): no raising anything above
// one's own level, no changing users at or above it, integers only from v10,
// notifications checked from v6.
func TestAuthPowerLevels(t *testing.T) {
	t.Parallel()
	// Bob (50) may send power levels; Carol is at 10, Dave at 50 like Bob.
	base := func() map[string]any {
		return levels(map[string]any{
			"users":         map[string]any{alice: 100, bob: 50, carol: 10, dave: 50},
			"events":        map[string]any{"m.room.power_levels": 50, "m.room.tombstone": 75},
			"notifications": map[string]any{"room": 100},
		})
	}
	setup := func(r *testRoom) {
		r.join(bob)
		r.do(alice, "m.room.power_levels", ptr(""), jsonOf(base()))
	}
	// change is Bob's power levels: base with edit applied.
	change := func(edit func(pl map[string]any)) func(r *testRoom) *Event {
		return func(r *testRoom) *Event {
			pl := base()
			edit(pl)
			return r.event(bob, "m.room.power_levels", ptr(""), jsonOf(pl), "")
		}
	}
	set := func(key string, v any) func(r *testRoom) *Event {
		return change(func(pl map[string]any) {
			if v == nil {
				delete(pl, key)
			} else {
				pl[key] = v
			}
		})
	}
	setIn := func(key, sub string, v any) func(r *testRoom) *Event {
		return change(func(pl map[string]any) {
			m := pl[key].(map[string]any)
			if v == nil {
				delete(m, sub)
			} else {
				m[sub] = v
			}
		})
	}
	cases := []authCase{
		{name: "same levels again", ok: true, event: change(func(map[string]any) {})},
		{name: "first power levels", ok: true, opts: roomOpts{noLevels: true}, setup: func(*testRoom) {},
			event: func(r *testRoom) *Event {
				return r.event(alice, "m.room.power_levels", ptr(""), jsonOf(levels(map[string]any{"users": map[string]any{alice: 100, bob: 100}})), "")
			}},
		{name: "power levels below their level", setup: func(r *testRoom) { r.join(bob) },
			event: func(r *testRoom) *Event {
				return r.event(bob, "m.room.power_levels", ptr(""), jsonOf(defaultLevels()), "")
			}},
		{name: "ban raised above own level", event: set("ban", 75)},
		{name: "ban lowered", ok: true, event: set("ban", 40)},
		{name: "ban raised to own level", ok: true, event: set("ban", 50)},
		{name: "users_default raised above own level", event: set("users_default", 60)},
		{name: "state_default removed at own level", ok: true, event: set("state_default", nil)},
		{name: "events entry above own level changed", event: setIn("events", "m.room.tombstone", 40)},
		{name: "events entry above own level removed", event: setIn("events", "m.room.tombstone", nil)},
		{name: "events entry added above own level", event: setIn("events", "m.room.name", 75)},
		{name: "events entry added at own level", ok: true, event: setIn("events", "m.room.name", 50)},
		{name: "user raised above own level", event: setIn("users", carol, 75)},
		{name: "user raised to own level", ok: true, event: setIn("users", carol, 50)},
		{name: "lower user removed", ok: true, event: setIn("users", carol, nil)},
		{name: "new user above own level", event: setIn("users", "@eve:a.test", 51)},
		{name: "new user at own level", ok: true, event: setIn("users", "@eve:a.test", 50)},
		{name: "user at own level lowered", event: setIn("users", dave, 0)},
		{name: "user at own level removed", event: setIn("users", dave, nil)},
		{name: "users removed with a user at own level", event: set("users", map[string]any{alice: 100, bob: 50})},
		{name: "own level lowered", ok: true, event: setIn("users", bob, 10)},
		{name: "users not an object", event: set("users", []any{bob})},
		{name: "users key not a user ID", event: setIn("users", "bob", 10)},

		// notifications: checked like events from v6.
		{name: "notifications entry above own level changed", when: from(6), event: setIn("notifications", "room", 0)},
		{name: "notifications entry above own level changed, unchecked before v6", when: upTo(5), ok: true, event: setIn("notifications", "room", 0)},
		{name: "notifications removed", when: from(6), event: set("notifications", nil)},
		{name: "notifications removed, unchecked before v6", when: upTo(5), ok: true, event: set("notifications", nil)},
		{name: "notifications entry added above own level", when: from(6), event: setIn("notifications", "org.example", 60)},
		{name: "notifications entry added above own level, unchecked before v6", when: upTo(5), ok: true, event: setIn("notifications", "org.example", 60)},
		{name: "notifications entry added at own level", ok: true, event: setIn("notifications", "org.example", 50)},

		// Strings as levels: accepted before v10, rejected from v10.
		{name: "top-level string level", when: upTo(9), ok: true, event: set("ban", "50")},
		{name: "top-level string level", when: from(10), event: set("ban", "50")},
		{name: "string user level", when: upTo(9), ok: true, event: setIn("users", carol, " 20 ")},
		{name: "string user level", when: from(10), event: setIn("users", carol, "20")},
		{name: "string events level", when: upTo(9), ok: true, event: setIn("events", "m.room.name", "+30")},
		{name: "string events level", when: from(10), event: setIn("events", "m.room.name", "30")},
		{name: "string notifications level", when: upTo(9), ok: true, event: setIn("notifications", "room", "100")},
		{name: "string notifications level", when: from(10), event: setIn("notifications", "room", "100")},
		{name: "string that is not an integer", event: setIn("users", carol, "ten")},
		{name: "events not an object", when: from(10), event: set("events", []any{})},
	}
	for i := range cases {
		if cases[i].setup == nil {
			cases[i].setup = setup
		}
	}
	runAuthCases(t, cases)
}
