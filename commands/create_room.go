package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pdus"
)

// StateEvent is a state event of a createRoom request's initial_state.
type StateEvent struct {
	Type     string          `json:"type"`
	StateKey string          `json:"state_key"`
	Content  json.RawMessage `json:"content"`
}

// CreateRoom is a POST /createRoom request (spec: client-server API, "Creation").
type CreateRoom struct {
	Creator  string
	DeviceID string
	// Public lists the room in the server's room directory (visibility "public").
	Public          bool
	AliasLocalpart  string
	Name, Topic     *string
	Invite          []string
	RoomVersion     string
	CreationContent json.RawMessage
	InitialState    []StateEvent
	// Preset is private_chat, trusted_private_chat or public_chat; empty picks by
	// visibility.
	Preset             string
	PowerLevelOverride json.RawMessage
	IsDirect           bool
}

// RoomCreated is the new room.
type RoomCreated struct {
	RoomID   string
	Position eventlog.Position
}

// Presets of createRoom.
const (
	PresetPrivateChat        = "private_chat"
	PresetTrustedPrivateChat = "trusted_private_chat"
	PresetPublicChat         = "public_chat"
)

// CreateRoom creates a room with the events the spec lists, in its order: create, the
// creator's join, power levels, canonical alias, the preset's join rules, history
// visibility and guest access, initial_state, name, topic, then the invites.
func (c *Commands) CreateRoom(ctx context.Context, meta Meta, req CreateRoom) (RoomCreated, error) {
	version := req.RoomVersion
	if version == "" {
		version = c.cfg.DefaultRoomVersion
		if version == "" {
			version = pdus.DefaultVersion
		}
	}
	if !pdus.Supported(version) {
		return RoomCreated{}, fmt.Errorf("%w: %q", ErrUnsupportedRoomVersion, version)
	}
	preset := req.Preset
	switch preset {
	case "":
		preset = PresetPrivateChat
		if req.Public {
			preset = PresetPublicChat
		}
	case PresetPrivateChat, PresetTrustedPrivateChat, PresetPublicChat:
	default:
		return RoomCreated{}, badRequest("unknown preset %q", preset)
	}
	var alias string
	if req.AliasLocalpart != "" {
		if strings.ContainsAny(req.AliasLocalpart, ":# \t\n") {
			return RoomCreated{}, badRequest("room_alias_name must be the alias's local part, without '#', ':' or spaces")
		}
		alias = "#" + req.AliasLocalpart + ":" + c.cfg.ServerName
		if len(alias) > 255 {
			return RoomCreated{}, badRequest("room alias is longer than 255 bytes")
		}
		if err := c.aliasReservedFor(alias, meta.Appservice); err != nil {
			return RoomCreated{}, err
		}
	}
	creation := map[string]json.RawMessage{}
	if len(req.CreationContent) > 0 {
		if err := json.Unmarshal(req.CreationContent, &creation); err != nil {
			return RoomCreated{}, badRequest("creation_content must be an object")
		}
	}
	var override map[string]json.RawMessage
	if len(req.PowerLevelOverride) > 0 && string(req.PowerLevelOverride) != "null" {
		if err := json.Unmarshal(req.PowerLevelOverride, &override); err != nil {
			return RoomCreated{}, badRequest("power_level_content_override must be an object")
		}
	}
	for _, s := range req.InitialState {
		if s.Type == "" {
			return RoomCreated{}, badRequest("initial_state events need a type")
		}
	}
	var out RoomCreated
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		if alias != "" {
			if _, err := c.q.RoomAliasGet(ctx, tx, alias); err == nil {
				return nil, ErrAliasInUse
			} else if !errors.Is(err, pgx.ErrNoRows) {
				return nil, err
			}
		}
		roomID := pdus.NewRoomID(c.cfg.ServerName)
		r := c.newRoom(tx, roomID, version)
		creation["room_version"] = json.RawMessage(fmt.Sprintf("%q", version))
		if r.rv().CreatorInContent() {
			creation["creator"] = content(req.Creator)
		} else {
			delete(creation, "creator")
		}
		add := func(typ, key string, body json.RawMessage) error {
			var sk *string
			if key != "-" {
				sk = strPtr(key)
			}
			_, err := r.add(ctx, pdus.Proto{Sender: req.Creator, Type: typ, StateKey: sk, Content: body}, nil)
			return err
		}
		if err := add("m.room.create", "", content(creation)); err != nil {
			return nil, err
		}
		join := map[string]any{"membership": "join"}
		if err := c.withProfile(ctx, tx, req.Creator, join); err != nil {
			return nil, err
		}
		if err := add("m.room.member", req.Creator, content(join)); err != nil {
			return nil, err
		}
		initial := map[pdus.StateKey]json.RawMessage{}
		for _, s := range req.InitialState {
			initial[pdus.StateKey{Type: s.Type, StateKey: s.StateKey}] = s.Content
		}
		pl := defaultPowerLevels(req.Creator, preset, req.Invite)
		if base, ok := initial[pdus.StateKey{Type: "m.room.power_levels"}]; ok {
			pl = map[string]json.RawMessage{}
			if err := json.Unmarshal(base, &pl); err != nil {
				return nil, badRequest("initial_state m.room.power_levels content must be an object")
			}
		}
		for k, v := range override {
			pl[k] = v
		}
		if err := add("m.room.power_levels", "", content(pl)); err != nil {
			return nil, err
		}
		if alias != "" {
			if err := add("m.room.canonical_alias", "", content(map[string]any{"alias": alias})); err != nil {
				return nil, err
			}
		}
		joinRule, guests := "invite", "can_join"
		if preset == PresetPublicChat {
			joinRule, guests = "public", "forbidden"
		}
		for _, s := range []struct {
			typ  string
			body any
		}{
			{"m.room.join_rules", map[string]any{"join_rule": joinRule}},
			{"m.room.history_visibility", map[string]any{"history_visibility": "shared"}},
			{"m.room.guest_access", map[string]any{"guest_access": guests}},
		} {
			if _, given := initial[pdus.StateKey{Type: s.typ}]; given {
				continue
			}
			if err := add(s.typ, "", content(s.body)); err != nil {
				return nil, err
			}
		}
		for _, s := range req.InitialState {
			if s.Type == "m.room.power_levels" && s.StateKey == "" {
				continue
			}
			if s.Type == "m.room.create" || s.Type == "m.room.member" {
				return nil, badRequest("initial_state may not contain %s events", s.Type)
			}
			if err := checkStateContent(ctx, r, s.Type, s.StateKey, s.Content); err != nil {
				return nil, err
			}
			if err := add(s.Type, s.StateKey, s.Content); err != nil {
				return nil, err
			}
		}
		if req.Name != nil {
			if err := add("m.room.name", "", content(map[string]any{"name": *req.Name})); err != nil {
				return nil, err
			}
		}
		if req.Topic != nil {
			if err := add("m.room.topic", "", content(map[string]any{"topic": *req.Topic})); err != nil {
				return nil, err
			}
		}
		for _, u := range req.Invite {
			body := map[string]any{"membership": "invite"}
			if req.IsDirect {
				body["is_direct"] = true
			}
			if err := c.withProfile(ctx, tx, u, body); err != nil {
				return nil, err
			}
			if err := add("m.room.member", u, content(body)); err != nil {
				return nil, err
			}
		}
		news := r.news
		if alias != "" {
			news = append(news, eventlog.NewEvent{Stream: eventlog.AliasStream(alias), Type: eventlog.TypeAliasCreated,
				Data: eventlog.AliasCreated{Alias: alias, RoomID: roomID, Creator: req.Creator}, ExpectVersion: eventlog.AnyVersion})
		}
		if req.Public {
			news = append(news, eventlog.NewEvent{Stream: eventlog.RoomStream(roomID), Type: eventlog.TypeRoomPublished,
				Data: eventlog.RoomPublished{RoomID: roomID, Public: true}, ExpectVersion: eventlog.AnyVersion})
		}
		out.RoomID = roomID
		return news, nil
	})
	out.Position = pos
	return out, err
}

// defaultPowerLevels is the power levels of a new room (Synapse's defaults): the
// creator 100, and with trusted_private_chat every invitee too.
func defaultPowerLevels(creator, preset string, invites []string) map[string]json.RawMessage {
	users := map[string]int{creator: 100}
	if preset == PresetTrustedPrivateChat {
		for _, u := range invites {
			users[u] = 100
		}
	}
	return map[string]json.RawMessage{
		"users":          content(users),
		"users_default":  content(0),
		"events_default": content(0),
		"state_default":  content(50),
		"ban":            content(50),
		"kick":           content(50),
		"redact":         content(50),
		"invite":         content(0),
		"events": content(map[string]int{
			"m.room.name": 50, "m.room.power_levels": 100, "m.room.history_visibility": 100,
			"m.room.canonical_alias": 50, "m.room.avatar": 50, "m.room.tombstone": 100,
			"m.room.server_acl": 100, "m.room.encryption": 100,
		}),
		"notifications": content(map[string]int{"room": 50}),
	}
}
