package queries

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"spelt.dev/spelt/sql/gen/readdb"
)

// ThreadsRequest is a GET /rooms/{roomId}/threads request.
type ThreadsRequest struct {
	RoomID string
	// Participated keeps the threads the viewer started or replied to (include=participated).
	Participated bool
	From         *Token
	Limit        int
}

// Threads is a page of a room's thread roots.
type Threads struct {
	Chunk     []json.RawMessage `json:"chunk"`
	NextBatch string            `json:"next_batch,omitempty"`
}

// Threads lists the thread roots of a room the viewer may read, the most recently
// active first, each with its m.thread aggregation (spec: client-server API, "Querying
// threads in a room"). A token "s<N>" resumes with the threads whose latest reply is at
// or before N.
func (q *Queries) Threads(ctx context.Context, v Viewer, req ThreadsRequest) (Threads, error) {
	last, err := q.q.RoomLastOrdering(ctx, q.pool, req.RoomID)
	if err != nil {
		return Threads{}, err
	}
	if last == 0 {
		return Threads{}, ErrRoomForbidden // unknown room: the same answer as a hidden one
	}
	a, err := q.access(ctx, q.pool, req.RoomID, v.UserID)
	if err != nil {
		return Threads{}, err
	}
	// As /messages: members, past members and invitees, or anyone in a world
	// readable room.
	if a.current() != "join" && a.current() != "invite" && a.lastSeen() == 0 {
		vis, err := q.roomVisibility(ctx, q.pool, req.RoomID, last)
		if err != nil {
			return Threads{}, err
		}
		if vis != "world_readable" {
			return Threads{}, ErrRoomForbidden
		}
	}
	limit := req.Limit
	if limit <= 0 {
		limit = 5
	}
	limit = min(limit, 100)
	before := int64(math.MaxInt64)
	if req.From != nil {
		before = int64(*req.From)
	}
	out := Threads{Chunk: []json.RawMessage{}}
	var picked []*eventRow
	more := true
	for scanned := 0; len(picked) < limit && more && scanned < maxScan; {
		n := int32(min(max(limit+1, 20), maxScan))
		rows, err := q.q.ThreadRoots(ctx, q.pool, readdb.ThreadRootsParams{RoomID: req.RoomID, Before: before, Participated: req.Participated,
			UserID: v.UserID, Lim: n})
		if err != nil {
			return Threads{}, fmt.Errorf("threads: %w", err)
		}
		more = len(rows) == int(n)
		for i, r := range rows {
			scanned++
			before = r.Latest - 1
			root := eventRow{StreamOrdering: r.StreamOrdering, EventID: r.EventID, RoomID: r.RoomID, Type: r.Type, StateKey: r.StateKey,
				Sender: r.Sender, OriginServerTs: r.OriginServerTs, Event: r.Event, ReplacesState: r.ReplacesState, RedactedBecause: r.RedactedBecause,
				Visibility: r.Visibility, Membership: r.Membership, TxnID: r.TxnID, TxnDevice: r.TxnDevice}
			if a.sees(v.UserID, &root) {
				picked = append(picked, &root)
				if len(picked) == limit {
					more = more || i < len(rows)-1
					break
				}
			}
		}
	}
	if more && before > 0 {
		out.NextBatch = Token(before).String()
	}
	if out.Chunk, err = q.render(ctx, q.pool, v, picked); err != nil {
		return Threads{}, err
	}
	return out, nil
}
