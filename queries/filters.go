package queries

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/sql/gen/readdb"
)

// Filter returns a filter the user uploaded, as uploaded, or ErrNotFound.
func (q *Queries) Filter(ctx context.Context, userID, filterID string) (json.RawMessage, error) {
	f, err := q.q.UserFilterGet(ctx, q.pool, readdb.UserFilterGetParams{UserID: userID, FilterID: filterID})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	return json.RawMessage(f), nil
}
