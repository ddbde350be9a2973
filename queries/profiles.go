package queries

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Profile is a user's display name and avatar URL (nil: not set).
type Profile struct {
	Displayname *string `json:"displayname,omitempty"`
	AvatarURL   *string `json:"avatar_url,omitempty"`
}

// Profile returns a local user's profile; ErrNotFound when there is no such user.
func (q *Queries) Profile(ctx context.Context, userID string) (Profile, error) {
	r, err := q.q.ProfileGet(ctx, q.pool, userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Profile{}, ErrNotFound
	}
	if err != nil {
		return Profile{}, fmt.Errorf("profile: %w", err)
	}
	return Profile{Displayname: r.Displayname, AvatarURL: r.AvatarUrl}, nil
}
