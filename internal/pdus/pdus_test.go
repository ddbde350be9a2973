package pdus

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"
)

// The test keys: this server's (a.test) and another's (b.test).
var (
	keyA = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	keyB = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))
)

const keyID = "ed25519:1"

var signerA = Signer{ServerName: "a.test", KeyID: keyID, Key: keyA}

// testKeys knows the keys of a.test and b.test.
func testKeys(server, id string) ed25519.PublicKey {
	if id != keyID {
		return nil
	}
	switch server {
	case "a.test":
		return keyA.Public().(ed25519.PublicKey)
	case "b.test":
		return keyB.Public().(ed25519.PublicKey)
	}
	return nil
}

// canonical encodes v as canonical JSON (spec: appendices, "Canonical JSON") for the
// values these tests use: sorted keys, no insignificant whitespace, no HTML escaping.
// It is written here, apart from the code under test, so the hashes and signatures are
// checked independently.
func canonical(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func decode(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// redactedForHash is the event as the redaction algorithm leaves it, without
// signatures and unsigned: what the reference hash and the signatures cover (spec:
// server-server API, "Calculating the reference hash for an event"). Only the
// top-level keys are stripped here; the test events' content survives redaction or
// is given.
func redactedForHash(t *testing.T, v int, raw []byte, content any) map[string]any {
	t.Helper()
	keep := []string{"event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "depth",
		"prev_events", "auth_events", "origin_server_ts"}
	if v < 11 {
		keep = append(keep, "prev_state", "origin", "membership")
	}
	full := decode(t, raw)
	out := map[string]any{}
	for _, k := range keep {
		if x, ok := full[k]; ok {
			out[k] = x
		}
	}
	out["content"] = content
	return out
}

var (
	v1EventID  = regexp.MustCompile(`^\$[A-Za-z0-9_-]+:a\.test$`)
	stdEventID = regexp.MustCompile(`^\$[A-Za-z0-9+/]{43}$`)
	urlEventID = regexp.MustCompile(`^\$[A-Za-z0-9_-]{43}$`)
)

// TestEventFormat checks each room version's event format: the event ID ($opaque:server
// in versions 1 and 2, the reference hash in standard unpadded base64 in version 3,
// URL-safe from version 4), the content hash, the signature, the form of prev_events
// and auth_events, and where a redaction says what it redacts.
func TestEventFormat(t *testing.T) {
	t.Parallel()
	for v := 1; v <= 11; v++ {
		t.Run("v"+strconv.Itoa(v), func(t *testing.T) {
			t.Parallel()
			r := newTestRoom(t, v, roomOpts{})
			create := r.get("m.room.create", "")
			last := r.last()
			msg := r.event(alice, "m.room.message", nil, `{"body":"hi","msgtype":"m.text"}`, "")
			raw := decode(t, msg.Raw)

			// Event ID.
			refHash := sha256.Sum256(canonical(t, redactedForHash(t, v, msg.Raw, map[string]any{})))
			switch {
			case v <= 2:
				if !v1EventID.MatchString(msg.ID) || raw["event_id"] != msg.ID {
					t.Fatalf("event ID %q (event_id %v), want $opaque:a.test in the event", msg.ID, raw["event_id"])
				}
			case v == 3:
				if want := "$" + base64.RawStdEncoding.EncodeToString(refHash[:]); msg.ID != want || !stdEventID.MatchString(msg.ID) {
					t.Fatalf("event ID %q, want the reference hash in unpadded standard base64 %q", msg.ID, want)
				}
			default:
				if want := "$" + base64.RawURLEncoding.EncodeToString(refHash[:]); msg.ID != want || !urlEventID.MatchString(msg.ID) {
					t.Fatalf("event ID %q, want the reference hash in unpadded URL-safe base64 %q", msg.ID, want)
				}
			}
			if v >= 3 {
				if _, ok := raw["event_id"]; ok {
					t.Fatal("event_id in a room version 3+ event")
				}
			}

			// prev_events and auth_events: [id, {sha256: reference hash}] pairs in
			// versions 1 and 2, plain IDs after.
			prev, _ := raw["prev_events"].([]any)
			if len(prev) != 1 {
				t.Fatalf("prev_events = %v", raw["prev_events"])
			}
			if v <= 2 {
				pair, _ := prev[0].([]any)
				if len(pair) != 2 || pair[0] != last.ID {
					t.Fatalf("prev_events = %v, want [[%s, hashes]]", prev, last.ID)
				}
				hashes, _ := pair[1].(map[string]any)
				if hashes["sha256"] != base64.RawStdEncoding.EncodeToString(refOf(t, v, last)) {
					t.Fatalf("prev_events hash %v, want the reference hash of %s", hashes, last.ID)
				}
				auth, _ := raw["auth_events"].([]any)
				found := false
				for _, a := range auth {
					if p, _ := a.([]any); len(p) == 2 && p[0] == create.ID {
						found = true
						if h, _ := p[1].(map[string]any); h["sha256"] != base64.RawStdEncoding.EncodeToString(refOf(t, v, create)) {
							t.Fatalf("auth_events hash of the create event %v", h)
						}
					}
				}
				if !found {
					t.Fatalf("auth_events %v lack the create event", auth)
				}
			} else {
				if prev[0] != last.ID {
					t.Fatalf("prev_events = %v, want [%s]", prev, last.ID)
				}
			}

			// Content hash: the event without unsigned, signatures and hashes.
			unsigned := decode(t, msg.Raw)
			delete(unsigned, "signatures")
			delete(unsigned, "unsigned")
			hashes := unsigned["hashes"].(map[string]any)
			delete(unsigned, "hashes")
			contentHash := sha256.Sum256(canonical(t, unsigned))
			if hashes["sha256"] != base64.RawStdEncoding.EncodeToString(contentHash[:]) {
				t.Fatalf("content hash %v, want %s", hashes["sha256"], base64.RawStdEncoding.EncodeToString(contentHash[:]))
			}

			// Signature: a.test's key over the redacted event.
			sig, _ := raw["signatures"].(map[string]any)["a.test"].(map[string]any)[keyID].(string)
			sigBytes, err := base64.RawStdEncoding.DecodeString(sig)
			if err != nil || !ed25519.Verify(keyA.Public().(ed25519.PublicKey), canonical(t, redactedForHash(t, v, msg.Raw, map[string]any{})), sigBytes) {
				t.Fatalf("signature %q does not verify with a.test's key", sig)
			}

			// Parse reads it back.
			back, err := Parse(strconv.Itoa(v), msg.ID, msg.Raw)
			if err != nil {
				t.Fatal(err)
			}
			if back.ID != msg.ID || back.Type() != "m.room.message" || back.Sender() != alice || back.IsState() ||
				len(back.PDU.PrevEvents) != 1 || string(back.PDU.PrevEvents[0]) != last.ID {
				t.Fatalf("parsed %+v", back.PDU)
			}

			// Redactions: top-level redacts before room version 11, content.redacts from 11.
			red := r.redaction(alice, msg.ID)
			rr := decode(t, red.Raw)
			inContent := rr["content"].(map[string]any)["redacts"]
			if v < 11 && (rr["redacts"] != msg.ID || inContent != nil) {
				t.Fatalf("v%d redaction %s: want top-level redacts only", v, red.Raw)
			}
			if v >= 11 && (rr["redacts"] != nil || inContent != msg.ID) {
				t.Fatalf("v%d redaction %s: want content.redacts only", v, red.Raw)
			}
			if red.Redacts() != msg.ID || red.Client().Redacts != msg.ID {
				t.Fatalf("Redacts() = %q", red.Redacts())
			}
			back, err = Parse(strconv.Itoa(v), red.ID, red.Raw)
			if err != nil || back.Redacts() != msg.ID {
				t.Fatalf("parsed redaction redacts %q, %v", back.Redacts(), err)
			}
			// A state event of type m.room.redaction is no redaction.
			stateRed := r.event(alice, "m.room.redaction", ptr(""), jsonOf(map[string]string{"redacts": msg.ID}), msg.ID)
			if got := stateRed.Redacts(); got != "" {
				t.Fatalf("state event m.room.redaction redacts %q", got)
			}
		})
	}
}

// refOf is the reference hash of ev, computed independently.
func refOf(t *testing.T, v int, ev *Event) []byte {
	t.Helper()
	content := decode(t, RedactContent(strconv.Itoa(v), ev.Type(), ev.PDU.Content))
	h := sha256.Sum256(canonical(t, redactedForHash(t, v, ev.Raw, content)))
	return h[:]
}

// TestCanonicalNumbers: events Spelt makes hold only integers in canonical JSON's
// range (room version 6 and later require it; spec: room version 6, "Canonical JSON").
func TestCanonicalNumbers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, content string
		ok            bool
	}{
		{"largest integer", `{"n":9007199254740991,"m":-9007199254740991}`, true},
		{"zero and nested", `{"a":[0,{"b":12}],"c":true}`, true},
		{"float", `{"n":1.5}`, false},
		{"float with zero fraction", `{"n":1.0}`, false},
		{"exponent", `{"n":1e3}`, false},
		{"nested float", `{"a":[{"b":0.1}]}`, false},
		{"too large", `{"n":9007199254740992}`, false},
		{"too small", `{"n":-9007199254740992}`, false},
	}
	for v := 1; v <= 11; v++ {
		for _, c := range cases {
			t.Run(fmt.Sprintf("v%d/%s", v, c.name), func(t *testing.T) {
				t.Parallel()
				_, err := Build(strconv.Itoa(v), Proto{RoomID: "!r:a.test", Sender: alice, Type: "m.room.message", Content: json.RawMessage(c.content)},
					nil, nil, 1, signerA)
				if c.ok && err != nil {
					t.Fatalf("Build: %v", err)
				}
				if !c.ok && (!errors.Is(err, ErrNotCanonical) || !errors.Is(err, ErrBadContent)) {
					t.Fatalf("Build err = %v, want ErrNotCanonical", err)
				}
			})
		}
	}
	if _, err := Build("10", Proto{RoomID: "!r:a.test", Sender: alice, Type: "m.room.message", Content: json.RawMessage(`[1]`)}, nil, nil, 1, signerA); !errors.Is(err, ErrBadContent) {
		t.Fatalf("array content: err = %v, want ErrBadContent", err)
	}
}

// TestRedactContent checks the redaction algorithm of each room version on content
// (spec: rooms v1 "Redactions", v6, v8, v9, v11).
func TestRedactContent(t *testing.T) {
	t.Parallel()
	all := func(int) bool { return true }
	from := func(n int) func(int) bool { return func(v int) bool { return v >= n } }
	upTo := func(n int) func(int) bool { return func(v int) bool { return v <= n } }
	between := func(a, b int) func(int) bool { return func(v int) bool { return v >= a && v <= b } }
	member := `{"membership":"join","displayname":"Bob","avatar_url":"mxc://a/b","join_authorised_via_users_server":"@alice:a.test",` +
		`"third_party_invite":{"display_name":"bob","signed":{"mxid":"@bob:a.test","token":"t","signatures":{}}},"reason":"x"}`
	create := `{"creator":"@alice:a.test","room_version":"1","m.federate":false,"predecessor":{"room_id":"!old:a.test"}}`
	pl := `{"ban":50,"events":{"m.room.name":50},"events_default":0,"invite":0,"kick":50,"redact":50,"state_default":50,` +
		`"users":{"@alice:a.test":100},"users_default":0,"notifications":{"room":50},"historical":100}`
	cases := []struct {
		name, typ, content string
		when               func(int) bool
		want               string
	}{
		{"member keeps membership", "m.room.member", member, upTo(8), `{"membership":"join"}`},
		{"member keeps join_authorised_via_users_server from v9", "m.room.member", member, between(9, 10),
			`{"membership":"join","join_authorised_via_users_server":"@alice:a.test"}`},
		{"member keeps third_party_invite.signed in v11", "m.room.member", member, from(11),
			`{"membership":"join","join_authorised_via_users_server":"@alice:a.test","third_party_invite":{"signed":{"mxid":"@bob:a.test","token":"t","signatures":{}}}}`},
		{"create keeps creator", "m.room.create", create, upTo(10), `{"creator":"@alice:a.test"}`},
		{"create keeps all of content in v11", "m.room.create", create, from(11), create},
		{"join_rules keeps join_rule", "m.room.join_rules", `{"join_rule":"restricted","allow":[{"type":"m.room_membership","room_id":"!x:a.test"}],"x":1}`,
			upTo(7), `{"join_rule":"restricted"}`},
		{"join_rules keeps allow from v8", "m.room.join_rules", `{"join_rule":"restricted","allow":[{"type":"m.room_membership","room_id":"!x:a.test"}],"x":1}`,
			from(8), `{"join_rule":"restricted","allow":[{"type":"m.room_membership","room_id":"!x:a.test"}]}`},
		{"power_levels without invite nor notifications", "m.room.power_levels", pl, upTo(10),
			`{"ban":50,"events":{"m.room.name":50},"events_default":0,"kick":50,"redact":50,"state_default":50,"users":{"@alice:a.test":100},"users_default":0}`},
		{"power_levels keeps invite in v11", "m.room.power_levels", pl, from(11),
			`{"ban":50,"events":{"m.room.name":50},"events_default":0,"invite":0,"kick":50,"redact":50,"state_default":50,"users":{"@alice:a.test":100},"users_default":0}`},
		{"history_visibility", "m.room.history_visibility", `{"history_visibility":"shared","x":1}`, all, `{"history_visibility":"shared"}`},
		{"aliases keeps aliases up to v5", "m.room.aliases", `{"aliases":["#a:a.test"],"x":1}`, upTo(5), `{"aliases":["#a:a.test"]}`},
		{"aliases loses everything from v6", "m.room.aliases", `{"aliases":["#a:a.test"],"x":1}`, from(6), `{}`},
		{"redaction loses everything before v11", "m.room.redaction", `{"redacts":"$x","reason":"spam"}`, upTo(10), `{}`},
		{"redaction keeps redacts in v11", "m.room.redaction", `{"redacts":"$x","reason":"spam"}`, from(11), `{"redacts":"$x"}`},
		{"message loses everything", "m.room.message", `{"body":"hi","msgtype":"m.text"}`, all, `{}`},
		{"topic loses everything", "m.room.topic", `{"topic":"t"}`, all, `{}`},
	}
	for v := 1; v <= 11; v++ {
		for _, c := range cases {
			if !c.when(v) {
				continue
			}
			t.Run(fmt.Sprintf("v%d/%s", v, c.name), func(t *testing.T) {
				t.Parallel()
				got := RedactContent(strconv.Itoa(v), c.typ, []byte(c.content))
				if g, w := canonical(t, decode(t, got)), canonical(t, decode(t, []byte(c.want))); !bytes.Equal(g, w) {
					t.Fatalf("got %s, want %s", g, w)
				}
			})
		}
	}
}

// TestLevels checks the lenient reading of power levels commands use.
func TestLevels(t *testing.T) {
	t.Parallel()
	r := newTestRoom(t, 1, roomOpts{})
	pl := r.event(alice, "m.room.power_levels", ptr(""), `{"users":{"@alice:a.test":"000100","@bob:a.test":" +40 ","@carol:a.test":"0x10"},`+
		`"users_default":"5","ban":"60","events":{"m.room.name":"70"},"state_default":"55"}`, "")
	l := PowerLevels([]*Event{nil, r.get("m.room.create", ""), pl})
	checks := []struct {
		name      string
		got, want int64
	}{
		{"leading zeroes", l.UserLevel(alice), 100},
		{"sign and spaces", l.UserLevel(bob), 40},
		{"hex is not a level", l.UserLevel(carol), 0},
		{"users_default", l.UserLevel(dave), 5},
		{"ban", l.ActionLevel("ban"), 60},
		{"kick default", l.ActionLevel("kick"), 50},
		{"invite default", l.ActionLevel("invite"), 0},
		{"event level", l.EventLevel("m.room.name", true), 70},
		{"state_default", l.EventLevel("m.room.topic", true), 55},
		{"events_default", l.EventLevel("m.room.message", false), 0},
		{"notifications default", l.NotificationLevel("room"), 50},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	none := PowerLevels([]*Event{r.get("m.room.create", "")})
	if none.UserLevel(alice) != 100 || none.UserLevel(bob) != 0 || none.EventLevel("m.room.topic", true) != 50 {
		t.Errorf("without power levels: creator %d, other %d, state %d", none.UserLevel(alice), none.UserLevel(bob), none.EventLevel("m.room.topic", true))
	}
}

// A built event's ID, content hash and signature are what mautrix computes and checks,
// in every room version with hashed event IDs.
func TestBuildAsMautrix(t *testing.T) {
	t.Parallel()
	for v := 3; v <= 11; v++ {
		ev, err := Build(strconv.Itoa(v), Proto{RoomID: "!r:a.test", Sender: "@alice:a.test", Type: "m.room.message",
			Content: json.RawMessage(`{"body":"hi","msgtype":"m.text"}`), OriginServerTS: 1}, []Ref{{ID: "$prev"}}, nil, 2, signerA)
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		rv := id.RoomVersion(strconv.Itoa(v))
		parsed, err := Parse(strconv.Itoa(v), ev.ID, ev.Raw)
		if err != nil {
			t.Fatal(err)
		}
		want, err := parsed.PDU.GetEventID(rv)
		if err != nil || string(want) != ev.ID {
			t.Errorf("v%d: event ID %s, mautrix computes %s (%v)", v, ev.ID, want, err)
		}
		if !parsed.PDU.VerifyContentHash() {
			t.Errorf("v%d: content hash does not verify", v)
		}
		err = parsed.PDU.VerifySignature(rv, "a.test", func(server string, key id.KeyID, _ time.Time) (id.SigningKey, time.Time, error) {
			return id.SigningKey(base64.RawStdEncoding.EncodeToString(testKeys(server, string(key)))), time.Now().Add(time.Hour), nil
		})
		if err != nil {
			t.Errorf("v%d: signature: %v", v, err)
		}
	}
}
