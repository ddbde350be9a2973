package queries

import (
	"context"
	"fmt"
	"time"
)

// Threepid is a third-party identifier of an account, as GET /account/3pid lists it.
type Threepid struct {
	Medium      string
	Address     string
	ValidatedAt time.Time
	AddedAt     time.Time
}

// Threepids lists the user's third-party identifiers.
func (q *Queries) Threepids(ctx context.Context, userID string) ([]Threepid, error) {
	rows, err := q.q.UserThreepidListByUser(ctx, q.pool, userID)
	if err != nil {
		return nil, fmt.Errorf("threepids: %w", err)
	}
	out := make([]Threepid, len(rows))
	for i, r := range rows {
		out[i] = Threepid(r)
	}
	return out, nil
}
