package pdus

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
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
func Authorize(e *Event, auth []*Event, keys KeyFunc) error {
	rv := e.Version
	authPDUs := make([]*pdu.PDU, 0, len(auth))
	for _, a := range auth {
		authPDUs = append(authPDUs, a.PDU)
	}
	// Rules mautrix's eventauth leaves out, in the order the spec gives them.
	if e.PDU.Type != "m.room.create" {
		if err := authorizeOld(e, auth); err != nil {
			return err
		}
	}
	getKey := func(serverName string, keyID id.KeyID, _ time.Time) (id.SigningKey, time.Time, error) {
		if keys == nil {
			return "", time.Time{}, nil
		}
		k := keys(serverName, string(keyID))
		if k == nil {
			return "", time.Time{}, nil
		}
		return id.SigningKey(base64.RawStdEncoding.EncodeToString(k)), time.Now().Add(24 * time.Hour), nil
	}
	getEvents := func([]id.EventID) ([]*pdu.PDU, error) {
		return nil, errors.New("auth events are given")
	}
	err := eventauth.Authorize(rv, e.PDU, authPDUs, getEvents, getKey)
	if err == nil {
		return nil
	}
	var afe eventauth.AuthFailError
	if errors.As(err, &afe) {
		return &AuthError{Reason: err.Error()}
	}
	return &AuthError{Reason: fmt.Sprintf("auth rules: %v", err)}
}

// special reports whether eventauth's verdict on e is final: m.room.aliases events in
// room versions 1 to 5 are allowed by rule 4 before the membership rules apply.
func authorizeOld(e *Event, auth []*Event) error {
	rv := e.Version
	switch {
	case e.PDU.Type == "m.room.aliases" && rv.SpecialCasedAliasesAuth():
		// Room versions 1-5, rule 4: the state key must be the sender's server.
		if e.PDU.StateKey == nil {
			return &AuthError{Reason: "m.room.aliases event without a state key"}
		}
		if *e.PDU.StateKey != e.PDU.Sender.Homeserver() {
			return &AuthError{Reason: "m.room.aliases state key is not the sender's server"}
		}
	case e.PDU.Type == "m.room.redaction" && rv.EventIDFormat() == id.EventIDFormatCustom:
		// Room versions 1 and 2, rule 11: the redact level, or an event of the
		// redaction's own server.
		if !Allowed(e, auth, "redact") && serverOf(e.Redacts()) != serverOf(e.ID) {
			return &AuthError{Reason: "sender may not redact events of other servers"}
		}
	}
	return nil
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
	switch r.Type {
	case gjson.Number:
		return r.Int()
	case gjson.String:
		var n int64
		if _, err := fmt.Sscan(strings.TrimSpace(r.Str), &n); err == nil {
			return n
		}
	}
	return def
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
