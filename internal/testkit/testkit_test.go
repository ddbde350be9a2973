package testkit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"spelt.dev/spelt/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func migrate(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	_, err = conn.Exec(ctx, "CREATE TABLE t (x int)")
	return err
}

func TestDB(t *testing.T) {
	t.Parallel()
	for i := range 4 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			begin := time.Now()
			url := testkit.DB(t, migrate)
			t.Logf("DB took %v", time.Since(begin))
			conn, err := pgx.Connect(t.Context(), url)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer func() { _ = conn.Close(context.Background()) }()
			// Each database is private: the row inserted here is the only one.
			if _, err := conn.Exec(t.Context(), "INSERT INTO t VALUES ($1)", i); err != nil {
				t.Fatalf("insert: %v", err)
			}
			var n int
			if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
				t.Fatalf("count = %d, %v; want 1", n, err)
			}
		})
	}
}

func TestAdminURL(t *testing.T) {
	t.Parallel()
	conn, err := pgx.Connect(t.Context(), testkit.AdminURL(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var super bool
	if err := conn.QueryRow(t.Context(), "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || !super {
		t.Fatalf("superuser = %v, %v", super, err)
	}
}
