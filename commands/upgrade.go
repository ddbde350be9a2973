package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/jackc/pgx/v5"
	"github.com/tidwall/gjson"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pdus"
)

// transferredState is the state an upgrade copies to the new room (spec: client-server
// API, "Room Upgrades", server behaviour 3), besides the power levels.
var transferredState = []string{
	"m.room.server_acl", "m.room.encryption", "m.room.name", "m.room.avatar", "m.room.topic",
	"m.room.guest_access", "m.room.history_visibility", "m.room.join_rules", "m.room.canonical_alias",
}

// UpgradeRoom replaces a room with a new one of another room version, in one
// transaction: the new room (create with predecessor, the upgrading user's join, the old
// power levels, the transferable state), the room's local aliases moved to it, the
// tombstone in the old room and the old room's power levels raised so that ordinary
// members can no longer talk or invite there.
func (c *Commands) UpgradeRoom(ctx context.Context, meta Meta, roomID, user, version string) (RoomCreated, error) {
	if !pdus.Supported(version) {
		return RoomCreated{}, fmt.Errorf("%w: %q", ErrUnsupportedRoomVersion, version)
	}
	var out RoomCreated
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		preload := authKeys(pdus.Proto{Sender: user, Type: "m.room.tombstone", StateKey: strPtr("")})
		for _, t := range transferredState {
			preload = append(preload, pdus.StateKey{Type: t})
		}
		old, _, err := c.openRoom(ctx, tx, roomID, opening{preload: preload})
		if err != nil {
			return nil, err
		}
		if m, err := old.membership(ctx, user); err != nil {
			return nil, err
		} else if m != "join" {
			return nil, forbidden("you are not in the room")
		}
		levels, err := old.levels(ctx)
		if err != nil {
			return nil, err
		}
		if levels.UserLevel(user) < levels.EventLevel("m.room.tombstone", true) {
			return nil, forbidden("upgrading the room needs power level %d", levels.EventLevel("m.room.tombstone", true))
		}
		create, err := old.current(ctx, "m.room.create", "")
		if err != nil || create == nil {
			return nil, fmt.Errorf("upgrade %s: no create event: %w", roomID, err)
		}

		newID := pdus.NewRoomID(c.cfg.ServerName)
		nr := c.newRoom(tx, newID, version)
		createContent := map[string]any{
			"room_version": version,
			"predecessor":  map[string]string{"room_id": roomID, "event_id": old.extremities[0].ID},
		}
		if t := gjson.GetBytes(create.PDU.Content, "type"); t.Type == gjson.String {
			createContent["type"] = t.Str
		}
		if nr.rv().CreatorInContent() {
			createContent["creator"] = user
		}
		add := func(r *room, typ, key string, body json.RawMessage) error {
			_, err := r.add(ctx, pdus.Proto{Sender: user, Type: typ, StateKey: strPtr(key), Content: body}, nil)
			return err
		}
		if err := add(nr, "m.room.create", "", content(createContent)); err != nil {
			return nil, err
		}
		join := map[string]any{"membership": "join"}
		if err := c.withProfile(ctx, tx, user, join); err != nil {
			return nil, err
		}
		if err := add(nr, "m.room.member", user, content(join)); err != nil {
			return nil, err
		}
		pl := defaultPowerLevels(user, PresetPrivateChat, nil)
		if old, err := old.current(ctx, "m.room.power_levels", ""); err != nil {
			return nil, err
		} else if old != nil {
			pl = map[string]json.RawMessage{}
			if err := json.Unmarshal(old.PDU.Content, &pl); err != nil {
				return nil, fmt.Errorf("upgrade %s: power levels: %w", roomID, err)
			}
		}
		// The upgrading user may need more power than they had to send the transferred
		// state: they get 100 until it is sent, then the old levels (as Synapse does).
		raised := maps.Clone(pl)
		users := map[string]json.RawMessage{}
		_ = json.Unmarshal(pl["users"], &users)
		if gjson.ParseBytes(users[user]).Int() < 100 {
			users[user] = content(100)
			raised["users"] = content(users)
		}
		if err := add(nr, "m.room.power_levels", "", content(raised)); err != nil {
			return nil, err
		}
		for _, t := range transferredState {
			ev, err := old.current(ctx, t, "")
			if err != nil {
				return nil, err
			}
			if ev == nil {
				continue
			}
			if err := add(nr, t, "", json.RawMessage(ev.PDU.Content)); err != nil {
				return nil, err
			}
		}

		if string(raised["users"]) != string(pl["users"]) {
			if err := add(nr, "m.room.power_levels", "", content(pl)); err != nil {
				return nil, err
			}
		}

		// The old room: tombstone, then power levels that stop ordinary members.
		if err := add(old, "m.room.tombstone", "", content(map[string]any{
			"body": "This room has been replaced", "replacement_room": newID,
		})); err != nil {
			return nil, err
		}
		if cur, err := old.current(ctx, "m.room.power_levels", ""); err != nil {
			return nil, err
		} else if cur != nil {
			var oldPL map[string]json.RawMessage
			if err := json.Unmarshal(cur.PDU.Content, &oldPL); err == nil {
				restrict := max(int64(50), gjson.GetBytes(cur.PDU.Content, "users_default").Int()+1)
				changed := false
				for _, k := range []string{"events_default", "invite"} {
					if gjson.GetBytes(cur.PDU.Content, k).Int() < restrict {
						oldPL[k] = content(restrict)
						changed = true
					}
				}
				if changed && levels.UserLevel(user) >= levels.EventLevel("m.room.power_levels", true) {
					if err := add(old, "m.room.power_levels", "", content(oldPL)); err != nil {
						return nil, err
					}
				}
			}
		}

		// The old room's canonical alias no longer names aliases that now point at the
		// new room (as Synapse does).
		if ca, err := old.current(ctx, "m.room.canonical_alias", ""); err != nil {
			return nil, err
		} else if ca != nil && len(gjson.GetBytes(ca.PDU.Content, "alias").Str)+len(gjson.GetBytes(ca.PDU.Content, "alt_aliases").Array()) > 0 &&
			levels.UserLevel(user) >= levels.EventLevel("m.room.canonical_alias", true) {
			if err := add(old, "m.room.canonical_alias", "", json.RawMessage(`{}`)); err != nil {
				return nil, err
			}
		}

		news := append(nr.news, old.news...)
		if old.published {
			// The directory lists the new room instead of the old.
			news = append(news,
				eventlog.NewEvent{Stream: eventlog.RoomStream(newID), Type: eventlog.TypeRoomPublished,
					Data: eventlog.RoomPublished{RoomID: newID, Public: true}, ExpectVersion: eventlog.AnyVersion},
				eventlog.NewEvent{Stream: eventlog.RoomStream(roomID), Type: eventlog.TypeRoomPublished,
					Data: eventlog.RoomPublished{RoomID: roomID, Public: false}, ExpectVersion: eventlog.AnyVersion})
		}
		aliases, err := c.q.RoomAliasesByRoom(ctx, tx, roomID)
		if err != nil {
			return nil, err
		}
		for _, a := range aliases {
			row, err := c.q.RoomAliasGet(ctx, tx, a)
			if err != nil {
				return nil, err
			}
			news = append(news,
				eventlog.NewEvent{Stream: eventlog.AliasStream(a), Type: eventlog.TypeAliasDeleted,
					Data: eventlog.AliasDeleted{Alias: a, RoomID: roomID}, ExpectVersion: eventlog.AnyVersion},
				eventlog.NewEvent{Stream: eventlog.AliasStream(a), Type: eventlog.TypeAliasCreated,
					Data: eventlog.AliasCreated{Alias: a, RoomID: newID, Creator: row.Creator}, ExpectVersion: eventlog.AnyVersion})
		}
		out.RoomID = newID
		return news, nil
	})
	out.Position = pos
	return out, err
}
