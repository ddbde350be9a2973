package queries

import (
	"context"
	"encoding/json"
)

// RoomInitialSync is the deprecated GET /rooms/{roomId}/initialSync: a snapshot of one
// room, its state and its latest events (spec: client-server API, "Room initial sync").
type RoomInitialSync struct {
	RoomID     string            `json:"room_id"`
	Membership string            `json:"membership,omitempty"`
	Messages   Messages          `json:"messages"`
	State      []json.RawMessage `json:"state"`
	Visibility string            `json:"visibility"`
	// AccountData is the user's room account data; there is none until account data
	// exists.
	AccountData []json.RawMessage `json:"account_data"`
}

// InitialSync returns the room's snapshot for the viewer: state as they may read it and
// the latest events they may see.
func (q *Queries) InitialSync(ctx context.Context, v Viewer, roomID string, limit int) (RoomInitialSync, error) {
	at, a, err := q.stateView(ctx, q.pool, roomID, v.UserID)
	if err != nil {
		return RoomInitialSync{}, err
	}
	state, err := q.stateAt(ctx, v, roomID, at, func(string, string) bool { return true })
	if err != nil {
		return RoomInitialSync{}, err
	}
	end := Token(at)
	msgs, err := q.Messages(ctx, v, MessagesRequest{RoomID: roomID, From: &end, Backward: true, Limit: limit})
	if err != nil {
		return RoomInitialSync{}, err
	}
	// initialSync lists the chunk oldest first, from start to end.
	for i, j := 0, len(msgs.Chunk)-1; i < j; i, j = i+1, j-1 {
		msgs.Chunk[i], msgs.Chunk[j] = msgs.Chunk[j], msgs.Chunk[i]
	}
	msgs.Start, msgs.End = msgs.End, end.String()
	if msgs.Start == "" {
		msgs.Start = Token(0).String()
	}
	info, err := q.q.RoomInfo(ctx, q.pool, roomID)
	if err != nil {
		return RoomInitialSync{}, err
	}
	vis := "private"
	if info.Published {
		vis = "public"
	}
	out := RoomInitialSync{RoomID: roomID, Messages: msgs, State: state, Visibility: vis, AccountData: []json.RawMessage{}}
	if m := a.current(); m != "leave" || a.lastSeen() > 0 {
		out.Membership = m
	}
	return out, nil
}
