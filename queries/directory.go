package queries

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/sql/gen/readdb"
)

// ErrAliasNotFound: the alias points at no room.
var ErrAliasNotFound = errors.New("room alias not found")

// ResolveAlias returns the room a local alias points at.
func (q *Queries) ResolveAlias(ctx context.Context, alias string) (string, error) {
	roomID, err := q.q.RoomAliasLookup(ctx, q.pool, alias)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrAliasNotFound
	}
	if err != nil {
		return "", fmt.Errorf("alias %s: %w", alias, err)
	}
	return roomID, nil
}

// LocalAliases returns the aliases of this server that point at the room (GET
// /rooms/{roomId}/aliases). Joined members may list them, and anyone when the room is
// world readable (spec: client-server API, "Room aliases"); server administrators too,
// as the spec allows. An unknown room gets the answer of a hidden one.
func (q *Queries) LocalAliases(ctx context.Context, user string, admin bool, roomID string) ([]string, error) {
	if !admin {
		last, err := q.q.RoomLastOrdering(ctx, q.pool, roomID)
		if err != nil {
			return nil, fmt.Errorf("room %s: %w", roomID, err)
		}
		if last == 0 {
			return nil, ErrRoomForbidden
		}
		a, err := q.access(ctx, q.pool, roomID, user)
		if err != nil {
			return nil, err
		}
		if a.current() != "join" {
			vis, err := q.roomVisibility(ctx, q.pool, roomID, last)
			if err != nil {
				return nil, err
			}
			if vis != "world_readable" {
				return nil, ErrRoomForbidden
			}
		}
	}
	aliases, err := q.q.RoomAliasesOfRoom(ctx, q.pool, roomID)
	if err != nil {
		return nil, fmt.Errorf("aliases of %s: %w", roomID, err)
	}
	return aliases, nil
}

// RoomPublished reports whether the room is in the server's room directory (GET
// /directory/list/room/{roomId}).
func (q *Queries) RoomPublished(ctx context.Context, roomID string) (bool, error) {
	row, err := q.q.RoomInfo(ctx, q.pool, roomID)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, ErrRoomNotFound
	}
	if err != nil {
		return false, fmt.Errorf("room %s: %w", roomID, err)
	}
	return row.Published, nil
}

// MaxPublicRoomsLimit is the largest page of the room directory; a request without a
// limit gets pages of this size.
const MaxPublicRoomsLimit = 500

// PublicRoomsRequest is a query of the room directory (GET and POST /publicRooms).
type PublicRoomsRequest struct {
	// Limit is the page size; 0 or more than MaxPublicRoomsLimit: MaxPublicRoomsLimit.
	Limit int
	// Since is a next_batch or prev_batch token of an earlier answer.
	Since string
	// SearchTerm keeps rooms whose name, topic or canonical alias contains it, case
	// insensitively.
	SearchTerm string
	// RoomTypes keeps rooms of these types (nil entry: rooms without a type); empty:
	// every room.
	RoomTypes []*string
	// ThirdPartyInstanceID asks for the rooms of one third-party network (application
	// services' bridges); empty: the server's own rooms.
	ThirdPartyInstanceID string
}

// PublicRoom is an entry of the room directory.
type PublicRoom = RoomChunk

// PublicRooms is a page of the room directory.
type PublicRooms struct {
	Chunk                []PublicRoom
	NextBatch, PrevBatch string
	// Total counts the rooms that match the request, on every page.
	Total int64
}

// directoryCursor is a position in the room directory's order, and the direction to
// page in from it.
type directoryCursor struct {
	forward bool
	joined  int64
	roomID  string
}

// String encodes the cursor as an opaque token: "f" or "b", the joined members, "_",
// the room ID, in base64url so that clients treat it as opaque.
func (c directoryCursor) String() string {
	dir := "b"
	if c.forward {
		dir = "f"
	}
	return base64.RawURLEncoding.EncodeToString([]byte(dir + strconv.FormatInt(c.joined, 10) + "_" + c.roomID))
}

func parseDirectoryCursor(token string) (directoryCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < 2 || raw[0] != 'f' && raw[0] != 'b' {
		return directoryCursor{}, ErrBadToken
	}
	joined, roomID, ok := strings.Cut(string(raw[1:]), "_")
	n, err := strconv.ParseInt(joined, 10, 64)
	if !ok || err != nil || n < 0 || !strings.HasPrefix(roomID, "!") {
		return directoryCursor{}, ErrBadToken
	}
	return directoryCursor{forward: raw[0] == 'f', joined: n, roomID: roomID}, nil
}

// PublicRooms returns a page of the room directory: the published rooms that anyone
// may join, knock on or read, most joined members first (spec: client-server API,
// "Listing rooms"). Pagination follows Synapse: a page reached with a token has a
// prev_batch, and a page with rooms after it a next_batch; tokens hold the position of
// the page's edge, so rooms that gain or lose members while a client pages are neither
// repeated nor skipped.
func (q *Queries) PublicRooms(ctx context.Context, req PublicRoomsRequest) (PublicRooms, error) {
	p := readdb.PublicRoomsPageParams{Forward: true, Search: req.SearchTerm, RoomTypes: []string{}}
	if req.Since != "" {
		cur, err := parseDirectoryCursor(req.Since)
		if err != nil {
			return PublicRooms{}, err
		}
		p.HasCursor, p.Forward, p.CursorJoined, p.CursorRoom = true, cur.forward, cur.joined, cur.roomID
	}
	if req.ThirdPartyInstanceID != "" {
		// No application service bridges a network here: its list is empty.
		return PublicRooms{Chunk: []PublicRoom{}}, nil
	}
	for _, t := range req.RoomTypes {
		p.FilterTypes = true
		if t == nil {
			p.Untyped = true
		} else {
			p.RoomTypes = append(p.RoomTypes, *t)
		}
	}
	limit := req.Limit
	if limit <= 0 || limit > MaxPublicRoomsLimit {
		limit = MaxPublicRoomsLimit
	}
	p.Lim = int32(limit + 1) // one more tells whether there are rooms beyond the page
	rows, err := q.q.PublicRoomsPage(ctx, q.pool, p)
	if err != nil {
		return PublicRooms{}, fmt.Errorf("public rooms: %w", err)
	}
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	if !p.Forward {
		slices.Reverse(rows)
	}
	out := PublicRooms{Chunk: make([]PublicRoom, len(rows))}
	for i, r := range rows {
		out.Chunk[i] = PublicRoom{
			RoomID: r.RoomID, RoomType: r.RoomType, NumJoinedMembers: r.Joined, Name: r.Name, Topic: r.Topic,
			AvatarURL: r.AvatarUrl, CanonicalAlias: r.CanonicalAlias, JoinRule: r.JoinRule,
			WorldReadable: r.HistoryVisibility == "world_readable", GuestCanJoin: r.GuestAccess == "can_join",
		}
		out.Total = r.Total
	}
	if len(rows) == 0 {
		if p.HasCursor {
			// The page is past an end; the count comes from the first page.
			p.HasCursor, p.Forward, p.Lim = false, true, 1
			first, err := q.q.PublicRoomsPage(ctx, q.pool, p)
			if err != nil {
				return PublicRooms{}, fmt.Errorf("public rooms: %w", err)
			}
			if len(first) > 0 {
				out.Total = first[0].Total
			}
		}
		return out, nil
	}
	firstRow, lastRow := rows[0], rows[len(rows)-1]
	prev := directoryCursor{forward: false, joined: firstRow.Joined, roomID: firstRow.RoomID}.String()
	next := directoryCursor{forward: true, joined: lastRow.Joined, roomID: lastRow.RoomID}.String()
	if p.Forward {
		if p.HasCursor {
			out.PrevBatch = prev
		}
		if more {
			out.NextBatch = next
		}
	} else {
		out.NextBatch = next
		if more {
			out.PrevBatch = prev
		}
	}
	return out, nil
}
