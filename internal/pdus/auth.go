package pdus

import (
	"crypto/ed25519"
	"encoding/base64"
	jsonv1 "encoding/json"
	"encoding/json/jsontext"
	"encoding/json/v2"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/federation/signutil"
	"maunium.net/go/mautrix/id"
)

// StateKey names a piece of room state.
type StateKey = pdu.StateKey

// AuthSelection is the state an event made from p needs for its auth events (spec:
// server-server API, "Auth events selection").
func AuthSelection(v string, p Proto) []StateKey {
	probe := &pdu.PDU{Type: p.Type, StateKey: p.StateKey, Sender: id.UserID(p.Sender), Content: []byte(p.Content)}
	if len(probe.Content) == 0 {
		probe.Content = []byte("{}")
	}
	return probe.AuthEventSelection(id.RoomVersion(v))
}

// AuthError is an event the auth rules reject.
type AuthError struct{ Reason string }

func (e *AuthError) Error() string { return e.Reason }

// KeyFunc returns the public key keyID of server, or nil when unknown.
type KeyFunc func(server, keyID string) ed25519.PublicKey

// Authorize applies the auth rules of the event's room version to e, given its auth
// events (the state its auth_events name). It fails with *AuthError when the rules
// reject the event.
//
// mautrix's eventauth does most of the work; this function adds what it leaves out or
// gets wrong for room versions 1 to 11, each marked where it is done.
func Authorize(e *Event, auth []*Event, keys KeyFunc) (err error) {
	defer func() {
		// eventauth dereferences values it assumes valid; a malformed event must be a
		// rejection, never a crashed request.
		if r := recover(); r != nil {
			err = &AuthError{Reason: fmt.Sprintf("auth rules: malformed event: %v", r)}
		}
	}()
	rv := e.Version
	if e.PDU.Type == "m.room.create" {
		if err := authorizeCreate(e); err != nil {
			return err
		}
	} else if err := checkAuthEvents(e, auth); err != nil {
		return err
	}
	evt := e.PDU
	authPDUs := make([]*pdu.PDU, 0, len(auth))
	var create, levels *Event
	for _, a := range auth {
		authPDUs = append(authPDUs, a.PDU)
		if k, ok := a.StateKey(); ok && k == "" {
			switch a.Type() {
			case "m.room.create":
				create = a
			case "m.room.power_levels":
				levels = a
			}
		}
	}
	if e.PDU.Type != "m.room.create" {
		if create == nil {
			return &AuthError{Reason: "no m.room.create event among the auth events"}
		}
		if v, done, err := authorizeSpecial(e, auth, create); done {
			return v
		} else if err != nil {
			return err
		}
		if rv.CreatorInContent() && levels == nil {
			// Without power levels the creator has 100 (spec: client-server API,
			// m.room.power_levels), and in room versions 1 to 10 the creator is
			// content.creator; eventauth takes the create event's sender.
			if creator := gjson.GetBytes(create.PDU.Content, "creator").Str; creator != "" && creator != create.Sender() {
				if gjson.GetBytes(create.PDU.Content, "m\\.federate").Type == gjson.False && create.PDU.Sender.Homeserver() != e.PDU.Sender.Homeserver() {
					return &AuthError{Reason: "federation is disabled for this room"}
				}
				c := create.PDU.Clone()
				c.Sender = id.UserID(creator)
				authPDUs = slices.DeleteFunc(authPDUs, func(p *pdu.PDU) bool { return p == create.PDU })
				authPDUs = append(authPDUs, c)
			}
		}
		if evt, err = adjust(e, levels); err != nil {
			return &AuthError{Reason: fmt.Sprintf("auth rules: %v", err)}
		}
	}
	// keys answers with keys valid at the event's time, so the validity period
	// (room version 5 and later) is the event's time itself.
	getKey := func(serverName string, keyID id.KeyID, eventTime time.Time) (id.SigningKey, time.Time, error) {
		if keys == nil {
			return "", time.Time{}, nil
		}
		k := keys(serverName, string(keyID))
		if k == nil {
			return "", time.Time{}, nil
		}
		return id.SigningKey(base64.RawStdEncoding.EncodeToString(k)), eventTime, nil
	}
	getEvents := func([]id.EventID) ([]*pdu.PDU, error) {
		return nil, errors.New("auth events are given")
	}
	err = eventauth.Authorize(rv, evt, authPDUs, getEvents, getKey)
	if isThirdPartyInvite(e) && (err == nil || errors.Is(err, eventauth.ErrThirdPartyInviteNotSigned)) {
		// eventauth has checked the third-party invite rules up to "If sender does
		// not match sender of the m.room.third_party_invite, reject" but reads the
		// public keys from the wrong event and verifies nothing: the signature rule
		// is here.
		return authorizeThirdPartySignature(e, auth)
	}
	if err == nil {
		return nil
	}
	var afe eventauth.AuthFailError
	if errors.As(err, &afe) {
		return &AuthError{Reason: err.Error()}
	}
	return &AuthError{Reason: fmt.Sprintf("auth rules: %v", err)}
}

// authorizeCreate applies the m.room.create rule eventauth skips: "If
// content.room_version is present and is not a recognised version, reject."
func authorizeCreate(e *Event) error {
	r := gjson.GetBytes(e.PDU.Content, "room_version")
	if !r.Exists() {
		return nil
	}
	if r.Type != gjson.String || !Supported(r.Str) {
		return &AuthError{Reason: fmt.Sprintf("m.room.create: unknown room version %s", r.Raw)}
	}
	return nil
}

// checkAuthEvents applies the rules on auth_events (room version 1: rule 2; spec:
// "Considering the event's auth_events") that eventauth skips when it is given the
// auth events: no duplicate type and state key, nothing the auth events selection
// would not pick, and all of the event's room.
func checkAuthEvents(e *Event, auth []*Event) error {
	want := e.PDU.AuthEventSelection(e.Version)
	seen := make(map[StateKey]bool, len(auth))
	for _, a := range auth {
		if a == nil || a.PDU.StateKey == nil {
			return &AuthError{Reason: "an auth event is not a state event"}
		}
		k := StateKey{Type: a.Type(), StateKey: *a.PDU.StateKey}
		switch {
		case seen[k]:
			return &AuthError{Reason: fmt.Sprintf("duplicate auth events for %s/%s", k.Type, k.StateKey)}
		case !want.Has(k):
			return &AuthError{Reason: fmt.Sprintf("auth event %s/%s is not one the event needs", k.Type, k.StateKey)}
		case a.PDU.RoomID != e.PDU.RoomID:
			return &AuthError{Reason: fmt.Sprintf("auth event %s is of another room", a.ID)}
		}
		seen[k] = true
	}
	return nil
}

// authorizeSpecial applies the rules of room versions 1 to 5 and 1 to 2 that
// eventauth does not have. done means v is the verdict.
func authorizeSpecial(e *Event, auth []*Event, create *Event) (v error, done bool, err error) {
	rv := e.Version
	switch {
	case e.PDU.Type == "m.room.aliases" && rv.SpecialCasedAliasesAuth():
		// Room versions 1-5: rule 3 (m.federate), then rule 4, which allows the event
		// before the membership and power level rules.
		if gjson.GetBytes(create.PDU.Content, "m\\.federate").Type == gjson.False && create.PDU.Sender.Homeserver() != e.PDU.Sender.Homeserver() {
			return &AuthError{Reason: "federation is disabled for this room"}, true, nil
		}
		if e.PDU.StateKey == nil {
			return &AuthError{Reason: "m.room.aliases event without a state key"}, true, nil
		}
		if *e.PDU.StateKey != e.PDU.Sender.Homeserver() {
			return &AuthError{Reason: "m.room.aliases state key is not the sender's server"}, true, nil
		}
		return nil, true, nil
	case e.PDU.Type == "m.room.redaction" && rv.EventIDFormat() == id.EventIDFormatCustom:
		// Room versions 1 and 2, rule 11: the redact level, or an event of the
		// redaction's own server. Rules 6 and 8 still apply (eventauth).
		if !Allowed(e, auth, "redact") && serverOf(e.Redacts()) != serverOf(e.ID) {
			return nil, false, &AuthError{Reason: "sender may not redact events of other servers"}
		}
	case e.PDU.Type == "m.room.power_levels":
		return nil, false, checkUserLevelChanges(e, auth)
	}
	return nil, false, nil
}

// checkUserLevelChanges applies "For each entry being changed in, or removed from, the
// users property, other than the sender's own entry: if the current value is greater
// than or equal to the sender's current power level, reject." eventauth crashes on a
// removed entry equal to the sender's level.
func checkUserLevelChanges(e *Event, auth []*Event) error {
	old := PowerLevels(auth)
	if old.content == nil {
		return nil
	}
	sender := old.UserLevel(e.Sender())
	newUsers := gjson.GetBytes(e.PDU.Content, "users")
	var err error
	gjson.GetBytes(old.content, "users").ForEach(func(k, v gjson.Result) bool {
		if k.Str == e.Sender() {
			return true
		}
		cur, ok := parseLevel(e.Version, v)
		if !ok || cur < sender {
			return true
		}
		nv, nok := parseLevel(e.Version, newUsers.Get(gjsonEscape(k.Str)))
		if !nok || nv != cur {
			err = &AuthError{Reason: fmt.Sprintf("sender (level %d) may not change the level of %s (%d)", sender, k.Str, cur)}
			return false
		}
		return true
	})
	return err
}

// adjust returns the event eventauth should see: e itself, or a copy with content
// eventauth would misread in this room version.
func adjust(e *Event, levels *Event) (*pdu.PDU, error) {
	rv := e.Version
	var edit func(map[string]jsontext.Value)
	switch {
	case e.PDU.Type == "m.room.power_levels" && !rv.NotificationsPowerLevels() && levels != nil:
		// Room versions 1 to 5 do not check changes of notifications (added in
		// room version 6, rules 9.4 and 9.5); eventauth always does.
		edit = func(c map[string]jsontext.Value) {
			if old := gjson.GetBytes(levels.PDU.Content, "notifications"); old.Exists() {
				c["notifications"] = jsontext.Value(old.Raw)
			} else {
				delete(c, "notifications")
			}
		}
	case e.PDU.Type == "m.room.member" && !rv.RestrictedJoins() &&
		gjson.GetBytes(e.PDU.Content, "join_authorised_via_users_server").Exists():
		// join_authorised_via_users_server means nothing before room version 8;
		// eventauth checks its signature in every version.
		edit = func(c map[string]jsontext.Value) { delete(c, "join_authorised_via_users_server") }
	default:
		return e.PDU, nil
	}
	var c map[string]jsontext.Value
	if err := json.Unmarshal(e.PDU.Content, &c); err != nil {
		return nil, err
	}
	edit(c)
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	p := e.PDU.Clone()
	p.Content = raw
	return p, nil
}

func isThirdPartyInvite(e *Event) bool {
	return e.PDU.Type == "m.room.member" && e.Membership() == "invite" &&
		gjson.GetBytes(e.PDU.Content, "third_party_invite").Exists()
}

// authorizeThirdPartySignature is the invite rule "If any signature in signed matches
// any public key in the m.room.third_party_invite event, allow. Otherwise, reject."
// The public keys are the event's public_key and the public_key of each entry of its
// public_keys.
func authorizeThirdPartySignature(e *Event, auth []*Event) error {
	signed := gjson.GetBytes(e.PDU.Content, "third_party_invite.signed")
	token := signed.Get("token").Str
	var tpi *Event
	for _, a := range auth {
		if k, ok := a.StateKey(); ok && a.Type() == "m.room.third_party_invite" && k == token {
			tpi = a
		}
	}
	if tpi == nil || !signed.IsObject() {
		return &AuthError{Reason: "no m.room.third_party_invite event matches the invite's token"}
	}
	var keys []string
	if k := gjson.GetBytes(tpi.PDU.Content, "public_key"); k.Type == gjson.String {
		keys = append(keys, k.Str)
	}
	gjson.GetBytes(tpi.PDU.Content, "public_keys").ForEach(func(_, v gjson.Result) bool {
		if k := v.Get("public_key"); k.Type == gjson.String {
			keys = append(keys, k.Str)
		}
		return true
	})
	for _, k := range keys {
		raw, ok := decodeKey(k)
		if !ok {
			continue
		}
		key := id.SigningKey(base64.RawStdEncoding.EncodeToString(raw))
		if signutil.VerifyJSONAny(key, jsonv1.RawMessage(signed.Raw)) == nil {
			return nil
		}
	}
	return &AuthError{Reason: "no signature of the third-party invite matches a public key of its m.room.third_party_invite event"}
}

// decodeKey reads an ed25519 public key in unpadded base64, standard or URL-safe
// (identity servers use both), padded or not.
func decodeKey(s string) ([]byte, bool) {
	s = strings.TrimRight(s, "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
			return b, true
		}
	}
	return nil, false
}

func serverOf(eventID string) string {
	_, s, _ := strings.Cut(eventID, ":")
	return s
}

// Allowed reports whether e's sender has the power level the action (ban, kick,
// invite, redact) needs, by the power levels among auth.
func Allowed(e *Event, auth []*Event, action string) bool {
	pl := PowerLevels(auth)
	return pl.UserLevel(e.Sender()) >= pl.ActionLevel(action)
}

// Levels is the content of a room's m.room.power_levels event, read leniently.
type Levels struct {
	content []byte
	creator string // the creator has 100 when there is no power levels event
}

// PowerLevels reads the m.room.power_levels event (and the create event) among state.
func PowerLevels(state []*Event) Levels {
	var l Levels
	for _, s := range state {
		if s == nil {
			continue
		}
		if k, ok := s.StateKey(); ok && k == "" {
			switch s.Type() {
			case "m.room.power_levels":
				l.content = s.PDU.Content
			case "m.room.create":
				l.creator = s.Sender()
				if s.Version.CreatorInContent() {
					l.creator = gjson.GetBytes(s.PDU.Content, "creator").Str
				}
			}
		}
	}
	return l
}

func intOr(r gjson.Result, def int64) int64 {
	if n, ok := parseLevel("", r); ok {
		return n
	}
	return def
}

// parseLevel reads a power level: an integer, or in room versions 1 to 9 a string
// holding one, in base 10 with optional sign, leading zeroes and surrounding
// whitespace (spec: room version 1, "m.room.power_levels events accept values as
// strings"). The empty version is mautrix's RoomV0, read as room version 1.
func parseLevel(v id.RoomVersion, r gjson.Result) (int64, bool) {
	switch r.Type {
	case gjson.Number:
		return r.Int(), true
	case gjson.String:
		if v.ValidatePowerLevelInts() {
			return 0, false
		}
		n, err := strconv.ParseInt(strings.TrimSpace(r.Str), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// UserLevel is the power level of user.
func (l Levels) UserLevel(user string) int64 {
	if l.content == nil {
		if user == l.creator {
			return 100
		}
		return 0
	}
	if r := gjson.GetBytes(l.content, "users."+gjsonEscape(user)); r.Exists() {
		return intOr(r, 0)
	}
	return intOr(gjson.GetBytes(l.content, "users_default"), 0)
}

// ActionLevel is the level of ban, kick, redact (50 by default) or invite (0).
func (l Levels) ActionLevel(action string) int64 {
	def := int64(50)
	if action == "invite" {
		def = 0
	}
	if l.content == nil {
		return def
	}
	return intOr(gjson.GetBytes(l.content, action), def)
}

// EventLevel is the level needed to send an event of type t (a state event when state).
func (l Levels) EventLevel(t string, state bool) int64 {
	if l.content == nil {
		if state {
			return 50
		}
		return 0
	}
	if r := gjson.GetBytes(l.content, "events."+gjsonEscape(t)); r.Exists() {
		return intOr(r, 0)
	}
	if state {
		return intOr(gjson.GetBytes(l.content, "state_default"), 50)
	}
	return intOr(gjson.GetBytes(l.content, "events_default"), 0)
}

// NotificationLevel is the level needed to trigger the notification key (room: 50).
func (l Levels) NotificationLevel(key string) int64 {
	if l.content == nil {
		return 50
	}
	return intOr(gjson.GetBytes(l.content, "notifications."+gjsonEscape(key)), 50)
}

func gjsonEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '.', '*', '?', '|', '#', '@', '\\', '!', '(', ')', '=', '<', '>', '%', ':':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
