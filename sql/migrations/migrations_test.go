package migrations

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3"

	"spelt.dev/spelt/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func empty(context.Context, string) error { return nil }

// migratedTo returns a pool on a database migrated up to version, and the provider that
// takes it further.
func migratedTo(t *testing.T, version int64) (*pgxpool.Pool, *goose.Provider) {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), testkit.DB(t, empty))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	p, db, err := provider(pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := p.UpTo(t.Context(), version); err != nil {
		t.Fatal(err)
	}
	return pool, p
}

// Migration 0032 moves rooms' forward extremities from their table into the rooms' rows,
// newest first.
func TestExtremitiesMoveIntoRooms(t *testing.T) {
	ctx := t.Context()
	pool, p := migratedTo(t, 31)
	_, err := pool.Exec(ctx, `
		INSERT INTO writemodel.rooms (room_id, room_version, max_depth) VALUES ('!a:x', '10', 7), ('!b:x', '10', 1);
		INSERT INTO writemodel.room_extremities (room_id, event_id, depth, pdu) VALUES
			('!a:x', '$old', 6, '{"depth": 6}'), ('!a:x', '$new', 7, '{"depth":7, "x": [1, 2]}')`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	rows, err := pool.Query(ctx, `SELECT room_id, extremities::text FROM writemodel.rooms`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var room, ext string
		if err := rows.Scan(&room, &ext); err != nil {
			t.Fatal(err)
		}
		got[room] = ext
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var a []struct {
		EventID string          `json:"event_id"`
		Depth   int64           `json:"depth"`
		PDU     json.RawMessage `json:"pdu"`
	}
	if err := json.Unmarshal([]byte(got["!a:x"]), &a); err != nil {
		t.Fatalf("extremities of !a:x %s: %v", got["!a:x"], err)
	}
	if len(a) != 2 || a[0].EventID != "$new" || a[0].Depth != 7 || string(a[0].PDU) != `{"depth":7, "x": [1, 2]}` || a[1].EventID != "$old" {
		t.Errorf("extremities of !a:x: %s", got["!a:x"])
	}
	if got["!b:x"] != "[]" {
		t.Errorf("extremities of !b:x: %s, want []", got["!b:x"])
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'writemodel' AND tablename = 'room_extremities'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("room_extremities still there (%d, %v)", n, err)
	}
}

// Migration 0033 gives notifications their event's stream ordering.
func TestPushActionsGetOrderings(t *testing.T) {
	ctx := t.Context()
	pool, p := migratedTo(t, 32)
	_, err := pool.Exec(ctx, `
		INSERT INTO room_events (stream_ordering, event_id, room_id, type, sender, origin_server_ts, depth, event, visibility)
		VALUES (41, '$e', '!r:x', 'm.room.message', '@a:x', 1, 2, '{}', 'shared');
		INSERT INTO event_push_actions (user_id, event_id, room_id, thread_id, highlight) VALUES
			('@b:x', '$e', '!r:x', 'main', false), ('@c:x', '$e', '!r:x', 'main', true)`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	var n, ordered int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE stream_ordering = 41) FROM event_push_actions`).Scan(&n, &ordered); err != nil {
		t.Fatal(err)
	}
	if n != 2 || ordered != 2 {
		t.Fatalf("%d notifications, %d with their event's ordering; want 2 and 2", n, ordered)
	}
}
