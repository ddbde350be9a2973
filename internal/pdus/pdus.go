// Package pdus is the room-event vocabulary both sides share: room versions, the
// federation form of an event (PDU) in each version's format, building and signing new
// events, reading stored ones and turning them into the client form. The hashing,
// signing, redaction and auth rules themselves come from maunium.net/go/mautrix's
// federation/pdu and federation/eventauth packages; this package fills what they lack
// or get wrong (see Authorize; auth_test.go proves the rules of every room version) and
// adds the client event format.
package pdus

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	jsonv1 "encoding/json"
	"encoding/json/jsontext"
	"encoding/json/v2"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/crypto/canonicaljson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

func init() {
	// Stored events carry their ID; room versions 1 and 2 cannot compute it.
	pdu.UseInternalMetaForGetEventID = true
}

// Versions are the room versions Spelt supports, oldest first (spec v1.13: 1 to 11).
var Versions = []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}

// DefaultVersion is the room version of new rooms unless configured otherwise.
const DefaultVersion = "10"

// Supported reports whether Spelt supports room version v.
func Supported(v string) bool { return slices.Contains(Versions, v) }

// Event is a room event in its federation form, whatever its room version's format: PDU
// is the event with prev_events and auth_events as event IDs (the format of room
// versions 3 and later); Raw is the event exactly as signed.
type Event struct {
	ID      string
	Version id.RoomVersion
	PDU     *pdu.PDU
	Raw     []byte
	// refHash is the reference hash of an event of room version 1 or 2, which the
	// [event ID, hashes] pairs of later events' prev_events and auth_events carry.
	refHash []byte
}

// Type is the event's type.
func (e *Event) Type() string { return e.PDU.Type }

// StateKey is the state key of a state event; ok is false for other events.
func (e *Event) StateKey() (key string, ok bool) {
	if e.PDU.StateKey == nil {
		return "", false
	}
	return *e.PDU.StateKey, true
}

// IsState reports whether the event is a state event.
func (e *Event) IsState() bool { return e.PDU.StateKey != nil }

// Sender is the event's sender.
func (e *Event) Sender() string { return string(e.PDU.Sender) }

// Membership is content.membership of an m.room.member event.
func (e *Event) Membership() string { return gjson.GetBytes(e.PDU.Content, "membership").Str }

// Redacts is the event a redaction redacts: in content from room version 11, at the top
// level before. A state event of type m.room.redaction redacts nothing: redactions are
// message events (spec: client-server API, m.room.redaction).
func (e *Event) Redacts() string {
	if e.PDU.Type != "m.room.redaction" || e.PDU.StateKey != nil {
		return ""
	}
	if e.Version.RedactsInContent() {
		return gjson.GetBytes(e.PDU.Content, "redacts").Str
	}
	if e.PDU.Redacts != nil {
		return string(*e.PDU.Redacts)
	}
	return ""
}

// Parse reads a stored event of room version v whose ID is eventID.
func Parse(v string, eventID string, raw []byte) (*Event, error) {
	rv := id.RoomVersion(v)
	e := &Event{ID: eventID, Version: rv, Raw: raw}
	if rv.EventIDFormat() == id.EventIDFormatCustom {
		var old pdu.RoomV1PDU
		if err := json.Unmarshal(raw, &old); err != nil {
			return nil, fmt.Errorf("parse event %s: %w", eventID, err)
		}
		e.PDU = fromV1(&old)
		// An event of another server may hold numbers canonical JSON cannot encode
		// (room versions 1 and 2 tolerate them); it stays readable, without the
		// reference hash later events would quote.
		if ref, err := old.GetReferenceHash(rv); err == nil {
			e.refHash = ref[:]
		}
	} else {
		var p pdu.PDU
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("parse event %s: %w", eventID, err)
		}
		e.PDU = &p
	}
	e.PDU.InternalMeta.EventID = id.EventID(eventID)
	return e, nil
}

// Ref is how a later event refers to an event (in prev_events and auth_events): its ID,
// and in room versions 1 and 2 its reference hash.
type Ref struct {
	ID   string
	Hash []byte // nil from room version 3 on
}

// Ref returns how later events refer to e.
func (e *Event) Ref() Ref { return Ref{ID: e.ID, Hash: e.refHash} }

// RefsOf returns the refs of events.
func RefsOf(events []*Event) []Ref {
	out := make([]Ref, len(events))
	for i, e := range events {
		out[i] = e.Ref()
	}
	return out
}

func fromV1(old *pdu.RoomV1PDU) *pdu.PDU {
	ids := func(refs []pdu.V1EventReference) []id.EventID {
		out := make([]id.EventID, len(refs))
		for i, r := range refs {
			out[i] = r.ID
		}
		return out
	}
	return &pdu.PDU{
		AuthEvents: ids(old.AuthEvents), Content: old.Content, Depth: old.Depth, Hashes: old.Hashes,
		OriginServerTS: old.OriginServerTS, PrevEvents: ids(old.PrevEvents), Redacts: old.Redacts, RoomID: old.RoomID,
		Sender: old.Sender, Signatures: old.Signatures, StateKey: old.StateKey, Type: old.Type, Unsigned: old.Unsigned,
		InternalMeta: pdu.InternalMeta{EventID: old.EventID},
	}
}

// Proto is what a new event says; Build adds the rest.
type Proto struct {
	RoomID   string
	Sender   string
	Type     string
	StateKey *string
	Content  jsonv1.RawMessage
	// Redacts is the event a redaction redacts (the caller puts it in content from
	// room version 11 on; Build puts it at the top level before).
	Redacts        string
	OriginServerTS int64
}

// Signer signs events as a server.
type Signer struct {
	ServerName string
	KeyID      string
	Key        ed25519.PrivateKey
}

// ErrBadContent means an event's content is not a JSON object.
var ErrBadContent = errors.New("event content must be a JSON object")

// ErrNotCanonical means an event's content has a number that canonical JSON forbids
// (a fraction, an exponent, or an integer beyond ±(2^53-1); spec: appendices,
// "Canonical JSON", and room version 6). It wraps ErrBadContent.
var ErrNotCanonical = fmt.Errorf("%w, and its numbers integers from -(2^53)+1 to (2^53)-1", ErrBadContent)

// Build makes a new event of room version v from p, with prev events, auth events and
// depth, hashed and signed by s.
func Build(v string, p Proto, prev []Ref, auth []*Event, depth int64, s Signer) (*Event, error) {
	rv := id.RoomVersion(v)
	content := jsontext.Value(p.Content)
	if len(content) == 0 {
		content = jsontext.Value("{}")
	}
	if content.Kind() != '{' {
		return nil, ErrBadContent
	}
	// Room versions 6 and later reject such numbers; earlier ones tolerate them in
	// events of other servers, but an event Spelt signs is hashed and signed as
	// canonical JSON, which cannot hold them, so it makes none in any version.
	if err := checkCanonicalNumbers(content); err != nil {
		return nil, err
	}
	var redacts *id.EventID
	if p.Redacts != "" && !rv.RedactsInContent() {
		r := id.EventID(p.Redacts)
		redacts = &r
	}
	e := &Event{Version: rv}
	if rv.EventIDFormat() == id.EventIDFormatCustom {
		refs := func(rs []Ref) []pdu.V1EventReference {
			out := make([]pdu.V1EventReference, len(rs))
			for i, r := range rs {
				// The pairs carry the referenced event's reference hash (spec:
				// server-server API, PDUs of room versions 1 and 2), as Synapse's do.
				out[i] = pdu.V1EventReference{ID: id.EventID(r.ID), Hashes: pdu.Hashes{SHA256: r.Hash}}
			}
			return out
		}
		old := &pdu.RoomV1PDU{
			AuthEvents: refs(RefsOf(auth)), Content: content, Depth: depth, EventID: id.EventID("$" + randomID() + ":" + s.ServerName),
			OriginServerTS: p.OriginServerTS, PrevEvents: refs(prev), Redacts: redacts, RoomID: id.RoomID(p.RoomID),
			Sender: id.UserID(p.Sender), StateKey: p.StateKey, Type: p.Type,
		}
		if err := old.Sign(rv, s.ServerName, id.KeyID(s.KeyID), s.Key); err != nil {
			return nil, fmt.Errorf("sign event: %w", err)
		}
		raw, err := json.Marshal(old)
		if err != nil {
			return nil, fmt.Errorf("encode event: %w", err)
		}
		ref, err := old.GetReferenceHash(rv)
		if err != nil {
			return nil, fmt.Errorf("reference hash: %w", err)
		}
		e.ID, e.Raw, e.refHash, e.PDU = string(old.EventID), raw, ref[:], fromV1(old)
		return e, nil
	}
	ids := func(rs []Ref) []id.EventID {
		out := make([]id.EventID, len(rs))
		for i, r := range rs {
			out[i] = id.EventID(r.ID)
		}
		return out
	}
	np := &pdu.PDU{
		AuthEvents: ids(RefsOf(auth)), Content: content, Depth: depth, OriginServerTS: p.OriginServerTS,
		PrevEvents: ids(prev), Redacts: redacts, RoomID: id.RoomID(p.RoomID), Sender: id.UserID(p.Sender),
		StateKey: p.StateKey, Type: p.Type,
	}
	// The signature and the reference hash (the event ID) cover the same bytes: the
	// event redacted, without signatures and unsigned, as canonical JSON. They are
	// made once (mautrix's Sign and GetEventID would each make them).
	if err := np.FillContentHash(); err != nil {
		return nil, fmt.Errorf("content hash: %w", err)
	}
	essential, err := canonicaljson.Marshal(np.Clone().RedactForSignature(rv))
	if err != nil {
		return nil, fmt.Errorf("sign event: %w", err)
	}
	np.AddSignature(s.ServerName, id.KeyID(s.KeyID), base64.RawStdEncoding.EncodeToString(ed25519.Sign(s.Key, essential)))
	ref := sha256.Sum256(essential)
	var eventID id.EventID
	switch rv.EventIDFormat() {
	case id.EventIDFormatBase64:
		eventID = id.EventID("$" + base64.RawStdEncoding.EncodeToString(ref[:]))
	case id.EventIDFormatURLSafeBase64:
		eventID = id.EventID("$" + base64.RawURLEncoding.EncodeToString(ref[:]))
	default:
		return nil, fmt.Errorf("event id: room version %s has event IDs of format %v", v, rv.EventIDFormat())
	}
	raw, err := json.Marshal(np)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	np.InternalMeta.EventID = eventID
	e.ID, e.Raw, e.PDU = string(eventID), raw, np
	return e, nil
}

// maxSafeInt is the largest integer canonical JSON allows, 2^53-1.
const maxSafeInt = 1<<53 - 1

// checkCanonicalNumbers rejects content whose numbers are not integers in canonical
// JSON's range (spec: appendices, "Canonical JSON").
func checkCanonicalNumbers(content jsontext.Value) error {
	dec := jsontext.NewDecoder(bytes.NewReader(content))
	for {
		tok, err := dec.ReadToken()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadContent, err)
		}
		if tok.Kind() != '0' {
			continue
		}
		n, err := strconv.ParseInt(tok.String(), 10, 64)
		if err != nil || n > maxSafeInt || n < -maxSafeInt {
			return fmt.Errorf("%w: %s", ErrNotCanonical, tok.String())
		}
	}
}

// randomID is 18 random URL-safe characters: the local part of room IDs and of the
// event IDs of room versions 1 and 2.
func randomID() string {
	b := make([]byte, 14)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:18]
}

// NewRoomID returns a fresh room ID on server.
func NewRoomID(server string) string { return "!" + randomID() + ":" + server }

// ClientEvent is an event in the client-server API's ClientEvent format, without
// unsigned (the reader adds it).
type ClientEvent struct {
	Content        jsonv1.RawMessage `json:"content"`
	EventID        string            `json:"event_id"`
	OriginServerTS int64             `json:"origin_server_ts"`
	RoomID         string            `json:"room_id"`
	Sender         string            `json:"sender"`
	StateKey       *string           `json:"state_key,omitempty"`
	Type           string            `json:"type"`
	Redacts        string            `json:"redacts,omitempty"`
}

// Client returns the event in the client format.
func (e *Event) Client() ClientEvent {
	return ClientEvent{
		Content: jsonv1.RawMessage(e.PDU.Content), EventID: e.ID, OriginServerTS: e.PDU.OriginServerTS,
		RoomID: string(e.PDU.RoomID), Sender: string(e.PDU.Sender), StateKey: e.PDU.StateKey, Type: e.PDU.Type,
		Redacts: e.Redacts(),
	}
}

// RedactContent returns content as a redaction of an event of type eventType leaves it
// in room version v.
func RedactContent(v, eventType string, content []byte) []byte {
	return pdu.RedactContent(eventType, jsontext.Value(content), id.RoomVersion(v))
}

// RedactPDU returns a PDU as redacting it leaves it in room version v (spec: client-server
// API, "Redactions"): only the top-level keys the version keeps, and its content
// redacted.
func RedactPDU(v string, raw []byte) ([]byte, error) {
	var obj map[string]jsonv1.RawMessage
	if err := jsonv1.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	keep := []string{"event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures", "depth",
		"prev_events", "auth_events", "origin_server_ts"}
	if !slices.Contains([]string{"11"}, v) {
		keep = append(keep, "origin", "membership", "prev_state") // dropped in v11
	}
	out := make(map[string]jsonv1.RawMessage, len(keep))
	for _, k := range keep {
		if val, ok := obj[k]; ok {
			out[k] = val
		}
	}
	var typ string
	_ = jsonv1.Unmarshal(obj["type"], &typ)
	if c, ok := obj["content"]; ok {
		out["content"] = RedactContent(v, typ, c)
	}
	return jsonv1.Marshal(out)
}
