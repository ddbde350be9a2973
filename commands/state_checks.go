package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ErrBadAlias is an m.room.canonical_alias naming an alias that does not point at the
// room (spec: client-server API, m.room.canonical_alias: M_BAD_ALIAS).
type BadAliasError struct{ Alias string }

func (e *BadAliasError) Error() string {
	return fmt.Sprintf("alias %s does not exist or does not point at this room", e.Alias)
}

// checkStateContent refuses state the spec asks servers to validate before sending.
func checkStateContent(ctx context.Context, r *room, typ, stateKey string, raw json.RawMessage) error {
	switch typ {
	case "m.room.canonical_alias":
		var c struct {
			Alias      *string  `json:"alias"`
			AltAliases []string `json:"alt_aliases"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return badRequest("m.room.canonical_alias: %v", err)
		}
		aliases := c.AltAliases
		if c.Alias != nil && *c.Alias != "" {
			aliases = append([]string{*c.Alias}, aliases...)
		}
		for _, a := range aliases {
			if err := r.c.checkAliasPointsAt(ctx, r.tx, a, r.id); err != nil {
				return err
			}
		}
	case "m.room.server_acl":
		var c struct {
			Allow           []string `json:"allow"`
			Deny            []string `json:"deny"`
			AllowIPLiterals *bool    `json:"allow_ip_literals"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return badRequest("m.room.server_acl: allow and deny must be lists of server names and allow_ip_literals a boolean: %v", err)
		}
	}
	return nil
}

// checkAliasPointsAt checks that alias is a valid room alias and, when it is one of
// this server's, that it points at roomID.
func (c *Commands) checkAliasPointsAt(ctx context.Context, tx pgx.Tx, alias, roomID string) error {
	_, server, err := ParseAlias(alias)
	if err != nil {
		return &BadAliasError{Alias: alias}
	}
	if server != c.cfg.ServerName {
		return nil // remote aliases cannot be checked without federation
	}
	row, err := c.q.RoomAliasGet(ctx, tx, alias)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && row.RoomID != roomID {
		return &BadAliasError{Alias: alias}
	}
	return err
}
