package queries

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/sql/gen/readdb"
)

// AccountData returns the user's account data of typ in roomID (global when empty), or
// ErrNotFound.
func (q *Queries) AccountData(ctx context.Context, userID, roomID, typ string) (json.RawMessage, error) {
	c, err := q.q.AccountDataGet(ctx, q.pool, readdb.AccountDataGetParams{UserID: userID, RoomID: roomID, Type: typ})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account data: %w", err)
	}
	return json.RawMessage(c), nil
}

// RoomTags returns the user's tags of a room, tag → its object.
func (q *Queries) RoomTags(ctx context.Context, userID, roomID string) (map[string]json.RawMessage, error) {
	rows, err := q.q.RoomTagsGet(ctx, q.pool, readdb.RoomTagsGetParams{UserID: userID, RoomID: roomID})
	if err != nil {
		return nil, fmt.Errorf("room tags: %w", err)
	}
	out := make(map[string]json.RawMessage, len(rows))
	for _, r := range rows {
		out[r.Tag] = json.RawMessage(r.Content)
	}
	return out, nil
}
