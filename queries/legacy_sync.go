package queries

import (
	"context"
	"encoding/json"
	"fmt"

	"spelt.dev/spelt/sql/gen/readdb"
)

// LegacyRoom is a room of the deprecated GET /initialSync.
type LegacyRoom struct {
	RoomID      string            `json:"room_id"`
	Membership  string            `json:"membership"`
	Invite      json.RawMessage   `json:"invite,omitempty"`
	Messages    *Messages         `json:"messages,omitempty"`
	State       []json.RawMessage `json:"state,omitempty"`
	Visibility  string            `json:"visibility,omitempty"`
	AccountData []json.RawMessage `json:"account_data,omitempty"`
}

// LegacyInitialSync is the deprecated GET /initialSync's answer.
type LegacyInitialSync struct {
	End         string            `json:"end"`
	Rooms       []LegacyRoom      `json:"rooms"`
	Presence    []json.RawMessage `json:"presence"`
	AccountData []json.RawMessage `json:"account_data"`
}

// GlobalInitialSync answers the deprecated GET /initialSync: every room the user is
// joined to or invited to (and, archived, has left), with its state and latest
// messages; presence and account data (spec: client-server API, "Legacy sync").
func (q *Queries) GlobalInitialSync(ctx context.Context, v Viewer, limit int, archived bool) (LegacyInitialSync, error) {
	now, err := q.SyncPositions(ctx)
	if err != nil {
		return LegacyInitialSync{}, err
	}
	now.Acked = now.ToDevice
	ms, err := q.q.SyncMemberships(ctx, q.pool, readdb.SyncMembershipsParams{UserID: v.UserID, At: now.Rooms})
	if err != nil {
		return LegacyInitialSync{}, fmt.Errorf("initial sync: %w", err)
	}
	roomData, global, err := q.syncAccountData(ctx, v.UserID, 0, now.AccountData, true)
	if err != nil {
		return LegacyInitialSync{}, err
	}
	out := LegacyInitialSync{End: now.String(), Rooms: []LegacyRoom{}, AccountData: global}
	var joined []string
	for _, m := range ms {
		switch m.Membership {
		case "join", "leave", "ban":
			if m.Membership != "join" && !archived {
				continue
			}
			if m.Membership == "join" {
				joined = append(joined, m.RoomID)
			}
			r, err := q.InitialSync(ctx, v, m.RoomID, limit)
			if err != nil {
				return LegacyInitialSync{}, err
			}
			msgs := r.Messages
			out.Rooms = append(out.Rooms, LegacyRoom{RoomID: m.RoomID, Membership: m.Membership, Messages: &msgs, State: r.State,
				Visibility: r.Visibility, AccountData: orEmpty(roomData[m.RoomID])})
		case "invite":
			row, err := q.q.RoomStateEventAt(ctx, q.pool, readdb.RoomStateEventAtParams{RoomID: m.RoomID, Type: "m.room.member", StateKey: v.UserID, At: now.Rooms})
			if err != nil {
				return LegacyInitialSync{}, fmt.Errorf("initial sync: %w", err)
			}
			key := v.UserID
			ev, err := q.render(ctx, q.pool, v, []*eventRow{{StreamOrdering: row.StreamOrdering, EventID: row.EventID, RoomID: m.RoomID,
				Type: "m.room.member", StateKey: &key, Sender: row.Sender, OriginServerTs: row.OriginServerTs, Event: row.Event,
				ReplacesState: row.ReplacesState, RedactedBecause: row.RedactedBecause, Visibility: row.Visibility, Membership: row.Membership}})
			if err != nil {
				return LegacyInitialSync{}, err
			}
			out.Rooms = append(out.Rooms, LegacyRoom{RoomID: m.RoomID, Membership: "invite", Invite: ev[0]})
		}
	}
	if out.Presence, err = q.syncPresence(ctx, v.UserID, joined, 0, now.Presence); err != nil {
		return LegacyInitialSync{}, err
	}
	return out, nil
}

// LegacyEvents is the deprecated GET /events's answer.
type LegacyEvents struct {
	Start string            `json:"start"`
	End   string            `json:"end"`
	Chunk []json.RawMessage `json:"chunk"`
}

// Flatten turns an incremental sync into the deprecated GET /events's chunk: the new
// events of every joined room, then presence.
func (s *Sync) Flatten(start string) LegacyEvents {
	out := LegacyEvents{Start: start, End: s.NextBatch, Chunk: []json.RawMessage{}}
	for _, r := range s.Rooms.Join {
		out.Chunk = append(out.Chunk, r.Timeline.Events...)
	}
	out.Chunk = append(out.Chunk, s.Presence.Events...)
	return out
}

// PeekEvents returns the events of one room after since (up to 100) that the viewer
// may see, joined or not: the room-preview form of GET /events (a world-readable room
// can be followed without joining). end is since with the room events' position moved
// past what was read.
func (q *Queries) PeekEvents(ctx context.Context, v Viewer, roomID string, since SyncToken) (LegacyEvents, error) {
	if _, _, err := q.stateView(ctx, q.pool, roomID, v.UserID); err != nil {
		return LegacyEvents{}, err
	}
	from := Token(since.Rooms)
	page, err := q.Messages(ctx, v, MessagesRequest{RoomID: roomID, From: &from, Limit: 100})
	if err != nil {
		return LegacyEvents{}, err
	}
	end := since
	if page.End != "" {
		t, err := ParseToken(page.End)
		if err != nil {
			return LegacyEvents{}, err
		}
		end.Rooms = int64(t)
	} else if last, err := q.q.RoomLastOrdering(ctx, q.pool, roomID); err == nil {
		end.Rooms = max(last, since.Rooms)
	} else {
		return LegacyEvents{}, err
	}
	return LegacyEvents{Start: since.String(), End: end.String(), Chunk: page.Chunk}, nil
}
