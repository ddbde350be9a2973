package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/pdus"
)

// Errors of the room directory.
var (
	// ErrAliasExists: PUT /directory/room/{roomAlias} of an alias that already points
	// at a room (the spec's 409).
	ErrAliasExists = errors.New("room alias already exists")
	// ErrAliasNotFound: the alias points at no room.
	ErrAliasNotFound = errors.New("room alias not found")
)

// maxAliasLength is the spec's limit on a room alias, sigil and domain included
// (appendices, "Room Aliases").
const maxAliasLength = 255

// ParseAlias splits a room alias "#localpart:server" and checks its grammar
// (appendices, "Room Aliases" and "Server Name"): a non-empty local part without
// whitespace or control characters, a valid server name, at most 255 bytes in all.
func ParseAlias(alias string) (localpart, server string, err error) {
	if len(alias) > maxAliasLength {
		return "", "", badRequest("room alias is longer than %d bytes", maxAliasLength)
	}
	if !strings.HasPrefix(alias, "#") {
		return "", "", badRequest("room alias must start with '#'")
	}
	if !utf8.ValidString(alias) {
		return "", "", badRequest("room alias must be UTF-8")
	}
	localpart, server, ok := strings.Cut(alias[1:], ":")
	if !ok || localpart == "" {
		return "", "", badRequest("room alias must be of the form #localpart:server")
	}
	for _, r := range localpart {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", "", badRequest("room alias may not contain whitespace or control characters")
		}
	}
	if !ValidServerName(server) {
		return "", "", badRequest("%q is not a valid server name", server)
	}
	return localpart, server, nil
}

// ValidServerName reports whether s follows the grammar of server names (appendices,
// "Server Name"): a DNS name, an IPv4 literal or a bracketed IPv6 literal, then an
// optional port of 1 to 5 digits.
func ValidServerName(s string) bool {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		host, port = s[:end+1], s[end+1:]
		inner := host[1 : len(host)-1]
		if len(inner) < 2 || len(inner) > 45 || strings.Trim(inner, "0123456789abcdefABCDEF:.") != "" {
			return false
		}
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i:]
		}
		if host == "" || len(host) > 255 {
			return false
		}
		for _, r := range host {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
				return false
			}
		}
	}
	if port == "" {
		return true
	}
	digits := strings.TrimPrefix(port, ":")
	return len(port) == len(digits)+1 && len(digits) >= 1 && len(digits) <= 5 && strings.Trim(digits, "0123456789") == ""
}

// localAlias checks alias's grammar and that it is one of this server's: aliases
// are scoped to their server, and there is no way to maintain another server's
// (client-server API, "Room aliases").
func (c *Commands) localAlias(alias string) error {
	_, server, err := ParseAlias(alias)
	if err != nil {
		return err
	}
	if server != c.cfg.ServerName {
		return badRequest("room alias must be one of this server's (%s)", c.cfg.ServerName)
	}
	return nil
}

// isServerAdmin reports whether user is an administrator of this server.
func (c *Commands) isServerAdmin(ctx context.Context, tx pgx.Tx, user string) (bool, error) {
	row, err := c.q.UserGet(ctx, tx, user)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("user %s: %w", user, err)
	}
	return row.IsAdmin, nil
}

// mayEditDirectory reports whether user may change the room's directory entries (its
// visibility, others' aliases): a server administrator, or a joined member with the
// power to send m.room.canonical_alias. The spec leaves the rule to servers ("Servers
// may choose to implement additional access control checks"); this one is Synapse's.
func (r *room) mayEditDirectory(ctx context.Context, user string) (bool, error) {
	if admin, err := r.c.isServerAdmin(ctx, r.tx, user); err != nil || admin {
		return admin, err
	}
	m, err := r.membership(ctx, user)
	if err != nil || m != "join" {
		return false, err
	}
	pl, err := r.levels(ctx)
	if err != nil {
		return false, err
	}
	return pl.UserLevel(user) >= pl.EventLevel("m.room.canonical_alias", true), nil
}

// CreateAlias points a new alias of this server at a room (PUT
// /directory/room/{roomAlias}). The user must be joined to the room, as Synapse
// requires, unless they are a server administrator.
func (c *Commands) CreateAlias(ctx context.Context, meta Meta, user, alias, roomID string) (eventlog.Position, error) {
	if err := c.localAlias(alias); err != nil {
		return eventlog.Position{}, err
	}
	if err := c.aliasReservedFor(alias, meta.Appservice); err != nil {
		return eventlog.Position{}, err
	}
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		r, _, err := c.openRoom(ctx, tx, roomID, opening{preload: aliasKeys(user)})
		if errors.Is(err, ErrRoomNotFound) {
			// The spec documents no 404 here: the room ID is a bad parameter.
			return nil, badRequest("room %s does not exist", roomID)
		}
		if err != nil {
			return nil, err
		}
		admin, err := c.isServerAdmin(ctx, tx, user)
		if err != nil {
			return nil, err
		}
		if !admin {
			m, err := r.membership(ctx, user)
			if err != nil {
				return nil, err
			}
			if m != "join" {
				return nil, forbidden("you must be in the room to create an alias for it")
			}
		}
		if _, err := c.q.RoomAliasGet(ctx, tx, alias); err == nil {
			return nil, ErrAliasExists
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("alias %s: %w", alias, err)
		}
		// AnyVersion: a deleted alias's stream goes on; two concurrent creations still
		// conflict on the stream's next version, and the retry finds the alias taken.
		return []eventlog.NewEvent{{Stream: eventlog.AliasStream(alias), Type: eventlog.TypeAliasCreated,
			Data: eventlog.AliasCreated{Alias: alias, RoomID: roomID, Creator: user}, ExpectVersion: eventlog.AnyVersion}}, nil
	})
}

// DeleteAlias removes an alias of this server (DELETE /directory/room/{roomAlias}).
// Its creator may, and so may server administrators and the room's members who may
// send m.room.canonical_alias (Synapse's rule; the spec lets servers choose). When the
// alias is the room's canonical alias or one of its alt_aliases, an updated
// m.room.canonical_alias without it follows, sent by the user; if the room's rules do
// not let them send it, the alias is deleted all the same, as the spec recommends.
func (c *Commands) DeleteAlias(ctx context.Context, meta Meta, user, alias string) (eventlog.Position, error) {
	if _, _, err := ParseAlias(alias); err != nil {
		return eventlog.Position{}, err
	}
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		row, err := c.q.RoomAliasGet(ctx, tx, alias)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrAliasNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("alias %s: %w", alias, err)
		}
		r, _, err := c.openRoom(ctx, tx, row.RoomID, opening{preload: aliasKeys(user)})
		if err != nil {
			return nil, err
		}
		if row.Creator != user {
			ok, err := r.mayEditDirectory(ctx, user)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, forbidden("only the alias's creator, a server administrator or a room moderator may delete it")
			}
		}
		news := []eventlog.NewEvent{{Stream: eventlog.AliasStream(alias), Type: eventlog.TypeAliasDeleted,
			Data: eventlog.AliasDeleted{Alias: alias, RoomID: row.RoomID}, ExpectVersion: eventlog.AnyVersion}}
		if err := r.dropCanonicalAlias(ctx, user, alias); err != nil {
			return nil, err
		}
		return append(news, r.news...), nil
	})
}

// dropCanonicalAlias sends an m.room.canonical_alias without alias when the current
// one names it. A sender without the power to send it is not an error: the alias goes
// anyway.
func (r *room) dropCanonicalAlias(ctx context.Context, user, alias string) error {
	cur, err := r.current(ctx, "m.room.canonical_alias", "")
	if err != nil || cur == nil {
		return err
	}
	var body map[string]json.RawMessage
	if json.Unmarshal(cur.PDU.Content, &body) != nil {
		return nil // content the server did not write and cannot edit
	}
	changed := false
	var main string
	if json.Unmarshal(body["alias"], &main) == nil && main == alias {
		delete(body, "alias")
		changed = true
	}
	var alts []json.RawMessage
	if json.Unmarshal(body["alt_aliases"], &alts) == nil && alts != nil {
		kept := make([]json.RawMessage, 0, len(alts))
		for _, a := range alts {
			var s string
			if json.Unmarshal(a, &s) == nil && s == alias {
				changed = true
				continue
			}
			kept = append(kept, a)
		}
		if len(kept) == 0 {
			delete(body, "alt_aliases")
		} else {
			body["alt_aliases"] = content(kept)
		}
	}
	if !changed {
		return nil
	}
	_, err = r.add(ctx, pdus.Proto{Sender: user, Type: "m.room.canonical_alias", StateKey: strPtr(""), Content: content(body)}, nil)
	var denied *ForbiddenError
	if errors.As(err, &denied) {
		return nil
	}
	return err
}

// SetRoomVisibility adds the room to the server's room directory (public) or removes
// it (PUT /directory/list/room/{roomId}). Server administrators may, and so may the
// room's members who may send m.room.canonical_alias (Synapse's rule).
func (c *Commands) SetRoomVisibility(ctx context.Context, meta Meta, user, roomID string, public bool) (eventlog.Position, error) {
	return c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		r, _, err := c.openRoom(ctx, tx, roomID, opening{preload: aliasKeys(user)})
		if err != nil {
			return nil, err
		}
		ok, err := r.mayEditDirectory(ctx, user)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, forbidden("you need to be a room moderator to change the room's entry in the room directory")
		}
		return []eventlog.NewEvent{{Stream: eventlog.RoomStream(roomID), Type: eventlog.TypeRoomPublished,
			Data: eventlog.RoomPublished{RoomID: roomID, Public: public}, ExpectVersion: eventlog.AnyVersion}}, nil
	})
}

// aliasKeys is the state directory commands read: the user's membership, the power
// levels and the canonical alias.
func aliasKeys(user string) []pdus.StateKey {
	return []pdus.StateKey{{Type: "m.room.create"}, {Type: "m.room.power_levels"}, {Type: "m.room.member", StateKey: user},
		{Type: "m.room.canonical_alias"}}
}
