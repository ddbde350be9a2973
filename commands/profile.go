package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/eventlog"
)

// Limits of profile fields, Synapse's.
const (
	maxDisplaynameLength = 256
	maxAvatarURLLength   = 1000
)

// SetProfileField sets a user's display name or avatar URL (field "displayname" or
// "avatar_url"; nil removes it), then carries the new profile into their member event
// in every room they are joined to, as Synapse does: each room is its own command, and
// the position returned is the last one's.
func (c *Commands) SetProfileField(ctx context.Context, meta Meta, userID, field string, value *string) (eventlog.Position, error) {
	switch {
	case field != "displayname" && field != "avatar_url":
		return eventlog.Position{}, badRequest("unknown profile field %q", field)
	case value != nil && field == "displayname" && len(*value) > maxDisplaynameLength:
		return eventlog.Position{}, badRequest("displayname is too long (at most %d bytes)", maxDisplaynameLength)
	case value != nil && field == "avatar_url" && len(*value) > maxAvatarURLLength:
		return eventlog.Position{}, badRequest("avatar_url is too long (at most %d bytes)", maxAvatarURLLength)
	}
	changed := false
	pos, err := c.run(ctx, meta, func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error) {
		changed = false
		p, err := c.q.ProfileGet(ctx, tx, userID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		old := p.Displayname
		if field == "avatar_url" {
			old = p.AvatarUrl
		}
		if (old == nil) == (value == nil) && (old == nil || *old == *value) {
			return nil, nil
		}
		changed = true
		return []eventlog.NewEvent{{Stream: eventlog.ProfileStream(userID), Type: eventlog.TypeProfileChanged, ExpectVersion: eventlog.AnyVersion,
			Data: eventlog.ProfileChanged{UserID: userID, Field: field, Value: value}}}, nil
	})
	if err != nil || !changed {
		return pos, err
	}
	rooms, err := c.q.RoomsJoinedBy(ctx, c.pool, userID)
	if err != nil {
		return pos, fmt.Errorf("set profile: rooms: %w", err)
	}
	for _, roomID := range rooms {
		sent, err := c.ChangeMembership(ctx, meta, Membership{RoomID: roomID, Sender: userID, Target: userID, Action: ActionJoin, Profile: true})
		if err != nil {
			// A room whose rules forbid the update (a power level on m.room.member,
			// say) keeps the old profile; the others get the new one.
			c.logger.WarnContext(ctx, "profile not carried into a room", slog.String("room_id", roomID), slog.Any("err", err))
			continue
		}
		if pos.Less(sent.Position) {
			pos = sent.Position
		}
	}
	return pos, nil
}
