package queries

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"
	"github.com/tidwall/gjson"

	"spelt.dev/spelt/sql/gen/readdb"
)

// Relation types the server aggregates (spec: client-server API, "Threading", "Event
// replacements", "Reference relations").
const (
	relThread     = "m.thread"
	relReplace    = "m.replace"
	relReference  = "m.reference"
	relAnnotation = "m.annotation"
)

// RelationsMaxDepth is how deep recurse=true follows relations of relations (spec:
// GET /relations, recurse: "at least 3 levels").
const RelationsMaxDepth = 3

// relationOf is the rel_type of an event's m.relates_to, "" when it has none: a
// relation needs both rel_type and event_id (spec: "Forming relationships between
// events"), as the rooms projector records them.
func relationOf(event string) string {
	rel := gjson.Get(event, `content.m\.relates_to`)
	typ, target := rel.Get("rel_type"), rel.Get("event_id")
	if typ.Type != gjson.String || target.Type != gjson.String || typ.Str == "" || target.Str == "" {
		return ""
	}
	return typ.Str
}

// accessByRoom is each room's access for user, in one query.
func (q *Queries) accessByRoom(ctx context.Context, db readdb.DBTX, rooms []string, user string) (map[string]access, error) {
	rows, err := q.q.RelationMembershipSpans(ctx, db, readdb.RelationMembershipSpansParams{RoomIds: rooms, UserID: user})
	if err != nil {
		return nil, fmt.Errorf("membership: %w", err)
	}
	out := make(map[string]access, len(rooms))
	for _, r := range rows {
		s := span{membership: deref(r.Membership), from: r.FromOrdering}
		if r.ToOrdering != nil {
			s.to = *r.ToOrdering
		}
		a := out[r.RoomID]
		a.spans = append(a.spans, s)
		out[r.RoomID] = a
	}
	return out, nil
}

// child is an event relating to another, without its body.
type child struct {
	row           eventRow
	relType       string
	hasNewContent bool
}

// visibleChildren returns, per parent, the events relating to it with one of relTypes
// that v sees, oldest first. A child in another room than its parent is no relation at
// all (spec: "Forming relationships between events").
func (q *Queries) visibleChildren(ctx context.Context, db readdb.DBTX, v Viewer, acc map[string]access, parents map[string]*eventRow,
	ids, relTypes []string) (map[string][]child, error) {
	rows, err := q.q.RelationChildren(ctx, db, readdb.RelationChildrenParams{ParentIds: ids, RelTypes: relTypes})
	if err != nil {
		return nil, fmt.Errorf("relations: %w", err)
	}
	out := map[string][]child{}
	for _, r := range rows {
		p := parents[r.RelatesTo]
		if p == nil || p.RoomID != r.RoomID {
			continue
		}
		c := child{relType: r.RelType, hasNewContent: r.HasNewContent, row: eventRow{
			StreamOrdering: r.StreamOrdering, EventID: r.EventID, RoomID: r.RoomID, Type: r.Type, StateKey: r.StateKey, Sender: r.Sender,
			OriginServerTs: r.OriginServerTs, Event: r.Event, Visibility: r.Visibility, Membership: r.Membership,
		}}
		if !acc[r.RoomID].sees(v.UserID, &c.row) {
			continue
		}
		out[r.RelatesTo] = append(out[r.RelatesTo], c)
	}
	return out, nil
}

// latestEdit is the replacement of original that applies, nil when none (spec:
// "Validity of replacement events" and "Server-side aggregation of m.replace
// relationships"): same sender and type, neither a state event, the original neither
// an edit itself nor redacted, m.new_content present (encrypted edits carry it in
// their ciphertext), and the most recent by origin_server_ts, then event ID.
func latestEdit(original *eventRow, children []child) *child {
	if original.StateKey != nil || original.RedactedBecause != nil || relationOf(original.Event) == relReplace {
		return nil
	}
	var best *child
	for i := range children {
		c := &children[i]
		if c.relType != relReplace || c.row.Sender != original.Sender || c.row.Type != original.Type || c.row.StateKey != nil {
			continue
		}
		if !c.hasNewContent && c.row.Type != "m.room.encrypted" {
			continue
		}
		if best == nil || cmp.Or(cmp.Compare(c.row.OriginServerTs, best.row.OriginServerTs), cmp.Compare(c.row.EventID, best.row.EventID)) > 0 {
			best = c
		}
	}
	return best
}

// references is the m.reference aggregation of children, nil when there is none.
func references(children []child) *referenceChunk {
	var out *referenceChunk
	for _, c := range children {
		if c.relType == relReference {
			if out == nil {
				out = &referenceChunk{}
			}
			out.Chunk = append(out.Chunk, eventRef{EventID: c.row.EventID})
		}
	}
	return out
}

// bundle is an event's unsigned m.relations.
type bundle struct {
	Thread    *threadSummary  `json:"m.thread,omitempty"`
	Replace   json.RawMessage `json:"m.replace,omitempty"`
	Reference *referenceChunk `json:"m.reference,omitempty"`
}

type threadSummary struct {
	LatestEvent             json.RawMessage `json:"latest_event"`
	Count                   int             `json:"count"`
	CurrentUserParticipated bool            `json:"current_user_participated"`
}

type referenceChunk struct {
	Chunk []eventRef `json:"chunk"`
}

type eventRef struct {
	EventID string `json:"event_id"`
}

// aggregations returns, per event ID of rows, the unsigned m.relations the viewer gets
// (spec: client-server API, "Server-side aggregation of m.relations"); events without
// any are absent. Only the events the viewer sees count. It reads in at most four
// queries whatever the number of rows: memberships, children, children of the threads'
// latest events, and the events bundled in full.
func (q *Queries) aggregations(ctx context.Context, db readdb.DBTX, v Viewer, rows []*eventRow) (map[string]json.RawMessage, error) {
	parents := map[string]*eventRow{}
	var ids, rooms []string
	seenRoom := map[string]bool{}
	for _, r := range rows {
		// State events get no bundled aggregations ("Aggregations of child events"),
		// nor do edits and annotations, which nothing may relate to (as Synapse).
		if r.StateKey != nil || parents[r.EventID] != nil {
			continue
		}
		if rel := relationOf(r.Event); rel == relReplace || rel == relAnnotation {
			continue
		}
		parents[r.EventID] = r
		ids = append(ids, r.EventID)
		if !seenRoom[r.RoomID] {
			seenRoom[r.RoomID] = true
			rooms = append(rooms, r.RoomID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	acc, err := q.accessByRoom(ctx, db, rooms, v.UserID)
	if err != nil {
		return nil, err
	}
	children, err := q.visibleChildren(ctx, db, v, acc, parents, ids, []string{relThread, relReplace, relReference})
	if err != nil {
		return nil, err
	}

	// Threads: count, participation and the latest event, which gets its own
	// aggregations (edits and references; it is a thread event, so no thread).
	type thread struct {
		count        int
		participated bool
		latest       *eventRow
	}
	threads := map[string]*thread{}
	latest := map[string]*eventRow{}
	var latestIDs []string
	for _, id := range ids {
		p := parents[id]
		if relationOf(p.Event) != "" {
			continue // a thread cannot start from a relation ("Threading")
		}
		var t *thread
		for i := range children[id] {
			c := &children[id][i]
			if c.relType != relThread {
				continue
			}
			if t == nil {
				t = &thread{participated: p.Sender == v.UserID}
			}
			t.count++
			t.participated = t.participated || c.row.Sender == v.UserID
			t.latest = &c.row
		}
		if t != nil {
			threads[id] = t
			latest[t.latest.EventID] = t.latest
			latestIDs = append(latestIDs, t.latest.EventID)
		}
	}
	var latestChildren map[string][]child
	if len(latestIDs) > 0 {
		latestChildren, err = q.visibleChildren(ctx, db, v, acc, latest, latestIDs, []string{relReplace, relReference})
		if err != nil {
			return nil, err
		}
	}

	// The events bundled in full: the edits that apply and the threads' latest events.
	edits := map[string]*child{}
	full := append([]string(nil), latestIDs...)
	for _, id := range ids {
		if e := latestEdit(parents[id], children[id]); e != nil {
			edits[id] = e
			full = append(full, e.row.EventID)
		}
	}
	for _, id := range latestIDs {
		if e := latestEdit(latest[id], latestChildren[id]); e != nil {
			edits[id] = e
			full = append(full, e.row.EventID)
		}
	}
	fullRows := map[string]*eventRow{}
	if len(full) > 0 {
		rs, err := q.q.RoomEventsByIDs(ctx, db, full)
		if err != nil {
			return nil, fmt.Errorf("related events: %w", err)
		}
		for _, r := range rs {
			e := eventRow(r)
			fullRows[r.EventID] = &e
		}
	}

	now := q.now().UnixMilli()
	build := func(id string, kids []child, t *thread) (json.RawMessage, error) {
		b, err := q.editAndReferences(id, kids, edits, fullRows, v, now)
		if err != nil {
			return nil, err
		}
		if t != nil {
			if r := fullRows[t.latest.EventID]; r != nil {
				rel, err := q.buildLatest(r, latestChildren[r.EventID], edits, fullRows, v, now)
				if err != nil {
					return nil, err
				}
				ev, err := q.renderOne(r, v, now, nil, rel)
				if err != nil {
					return nil, err
				}
				b.Thread = &threadSummary{LatestEvent: ev, Count: t.count, CurrentUserParticipated: t.participated}
			}
		}
		if b.Thread == nil && b.Replace == nil && b.Reference == nil {
			return nil, nil
		}
		return json.Marshal(b)
	}
	out := map[string]json.RawMessage{}
	for _, id := range ids {
		b, err := build(id, children[id], threads[id])
		if err != nil {
			return nil, err
		}
		if b != nil {
			out[id] = b
		}
	}
	return out, nil
}

// editAndReferences is the part of an event's m.relations every event may have: its
// latest edit (m.replace), rendered, and its references.
func (q *Queries) editAndReferences(id string, kids []child, edits map[string]*child, fullRows map[string]*eventRow, v Viewer, now int64) (bundle, error) {
	var b bundle
	if e := edits[id]; e != nil {
		if r := fullRows[e.row.EventID]; r != nil {
			out, err := q.renderOne(r, v, now, nil, nil)
			if err != nil {
				return bundle{}, err
			}
			b.Replace = out
		}
	}
	b.Reference = references(kids)
	return b, nil
}

// buildLatest is the m.relations of a thread's latest event.
func (q *Queries) buildLatest(r *eventRow, kids []child, edits map[string]*child, fullRows map[string]*eventRow, v Viewer, now int64) (json.RawMessage, error) {
	b, err := q.editAndReferences(r.EventID, kids, edits, fullRows, v, now)
	if err != nil {
		return nil, err
	}
	if b.Replace == nil && b.Reference == nil {
		return nil, nil
	}
	return json.Marshal(b)
}

// RelationsRequest is a GET /rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]
// request.
type RelationsRequest struct {
	RoomID, EventID string
	// RelType and EventType filter the children; empty: any.
	RelType, EventType string
	From, To           *Token
	Forward            bool
	Limit              int
	// Recurse is the recurse parameter, nil when absent.
	Recurse *bool
}

// Relations is a page of the children of an event.
type Relations struct {
	Chunk          []json.RawMessage `json:"chunk"`
	NextBatch      string            `json:"next_batch,omitempty"`
	PrevBatch      string            `json:"prev_batch,omitempty"`
	RecursionDepth *int              `json:"recursion_depth,omitempty"`
}

// Relations pages through the events relating to an event the viewer sees, showing
// only the children they see (spec: GET /rooms/{roomId}/relations/{eventId}). Tokens
// are room positions, like /messages': from a token backwards includes the event at
// it, forwards starts after it.
func (q *Queries) Relations(ctx context.Context, v Viewer, req RelationsRequest) (Relations, error) {
	row, err := q.q.RoomEventByID(ctx, q.pool, req.EventID)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && row.RoomID != req.RoomID {
		return Relations{}, ErrEventNotFound
	}
	if err != nil {
		return Relations{}, fmt.Errorf("relations: %w", err)
	}
	parent := eventRow(row)
	a, err := q.access(ctx, q.pool, req.RoomID, v.UserID)
	if err != nil {
		return Relations{}, err
	}
	if !a.sees(v.UserID, &parent) {
		// The spec's answer for an event in history the user may not read.
		return Relations{}, ErrEventNotFound
	}
	limit := req.Limit
	if limit <= 0 {
		limit = 5
	}
	limit = min(limit, 1000)
	depth := 1
	out := Relations{Chunk: []json.RawMessage{}}
	if req.Recurse != nil {
		if *req.Recurse {
			depth = RelationsMaxDepth
		}
		out.RecursionDepth = &depth
	}
	if req.From != nil {
		out.PrevBatch = req.From.String()
	}
	var relType, eventType *string
	if req.RelType != "" {
		relType = &req.RelType
	}
	if req.EventType != "" {
		eventType = &req.EventType
	}
	// The window (after, before] still to read; cur moves through it.
	after, before := int64(0), int64(math.MaxInt64)
	if req.Forward {
		if req.From != nil {
			after = int64(*req.From)
		}
		if req.To != nil {
			before = int64(*req.To)
		}
	} else {
		if req.From != nil {
			before = int64(*req.From)
		}
		if req.To != nil {
			after = int64(*req.To)
		}
	}
	fetch := func(n int32) ([]*eventRow, error) {
		var rows []*eventRow
		switch {
		case depth > 1:
			rs, err := q.q.RelationsRecursive(ctx, q.pool, readdb.RelationsRecursiveParams{ParentID: req.EventID, RoomID: req.RoomID,
				MaxDepth: int32(depth), RelType: relType, EventType: eventType, After: after, Before: before, Backward: !req.Forward, Lim: n})
			for _, r := range rs {
				e := eventRow(r)
				rows = append(rows, &e)
			}
			return rows, err
		case req.Forward:
			rs, err := q.q.RelationsForward(ctx, q.pool, readdb.RelationsForwardParams{ParentID: req.EventID, RoomID: req.RoomID,
				RelType: relType, EventType: eventType, After: after, Before: before, Lim: n})
			for _, r := range rs {
				e := eventRow(r)
				rows = append(rows, &e)
			}
			return rows, err
		default:
			rs, err := q.q.RelationsBackward(ctx, q.pool, readdb.RelationsBackwardParams{ParentID: req.EventID, RoomID: req.RoomID,
				RelType: relType, EventType: eventType, After: after, Before: before, Lim: n})
			for _, r := range rs {
				e := eventRow(r)
				rows = append(rows, &e)
			}
			return rows, err
		}
	}
	var picked []*eventRow
	more := true
	for scanned := 0; len(picked) < limit && more && scanned < maxScan; {
		n := int32(min(max(limit+1, 50), maxScan))
		rows, err := fetch(n)
		if err != nil {
			return Relations{}, fmt.Errorf("relations: %w", err)
		}
		more = len(rows) == int(n)
		for i, r := range rows {
			scanned++
			if req.Forward {
				after = r.StreamOrdering
			} else {
				before = r.StreamOrdering - 1
			}
			if a.sees(v.UserID, r) {
				picked = append(picked, r)
				if len(picked) == limit {
					more = more || i < len(rows)-1
					break
				}
			}
		}
	}
	if more && (req.Forward || before > 0) && after < before {
		if req.Forward {
			out.NextBatch = Token(after).String()
		} else {
			out.NextBatch = Token(before).String()
		}
	}
	if out.Chunk, err = q.render(ctx, q.pool, v, picked); err != nil {
		return Relations{}, err
	}
	return out, nil
}
