package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	spelthttp "spelt.dev/spelt/http"
	"spelt.dev/spelt/internal/config"
	"spelt.dev/spelt/internal/pgembed"
	"spelt.dev/spelt/sql/migrations"
)

// env is what every subcommand starts from: configuration, logger and database.
type env struct {
	cfg     config.Config
	logger  *slog.Logger
	pool    *pgxpool.Pool
	dbURL   string
	cluster *pgembed.Cluster
	// tweakHTTP, if set, adjusts the HTTP configuration (tests).
	tweakHTTP func(*spelthttp.Config)
}

func loadConfig(path string) (config.Config, error) {
	cfg, err := config.Load(path, os.LookupEnv)
	if err != nil {
		return cfg, fmt.Errorf("configuration:\n%w", err)
	}
	return cfg, nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// open loads the configuration and connects to the database, starting the embedded
// PostgreSQL when no URL is configured.
func open(ctx context.Context, cfgPath string, stderr io.Writer) (*env, error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, logger: newLogger(cfg, stderr)}
	e.dbURL = cfg.Database.URL
	if e.dbURL == "" {
		e.logger.InfoContext(ctx, "starting embedded PostgreSQL", slog.String("dir", cfg.PostgresDir()))
		e.cluster, err = pgembed.Start(ctx, pgembed.Options{DataDir: cfg.PostgresDir(), Logger: e.logger})
		if err != nil {
			return nil, err
		}
		if err := e.cluster.EnsureDatabase(ctx, "spelt"); err != nil {
			e.close()
			return nil, err
		}
		e.dbURL = e.cluster.URL("spelt")
	}
	e.pool, err = connect(ctx, e.dbURL, cfg.Database.MaxConns, "")
	if err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// connect opens a pool; a non-empty searchPath puts a schema before public (replay
// --into builds read models there).
func connect(ctx context.Context, url string, maxConns int32, searchPath string) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	if maxConns > 0 {
		pc.MaxConns = maxConns
	}
	pc.ConnConfig.RuntimeParams["application_name"] = "spelt"
	if searchPath != "" {
		pc.ConnConfig.RuntimeParams["search_path"] = searchPath
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database: %w", err)
	}
	return pool, nil
}

// requireSchema fails when migrations are pending.
func (e *env) requireSchema(ctx context.Context) error {
	cur, latest, err := migrations.Pending(ctx, e.pool)
	if err != nil {
		return err
	}
	if cur != latest {
		return fmt.Errorf("the database schema is at version %d, this spelt needs %d: run 'spelt migrate' (or 'spelt serve --migrate')", cur, latest)
	}
	return nil
}

func (e *env) close() {
	if e.pool != nil {
		e.pool.Close()
	}
	if e.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.cluster.Stop(ctx); err != nil {
			e.logger.Error("stopping embedded PostgreSQL failed", slog.Any("err", err))
		}
	}
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("migrate", "[--config PATH]", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	e, err := open(ctx, *cfgPath, stderr)
	if err != nil {
		return err
	}
	defer e.close()
	n, err := migrations.Up(ctx, e.pool)
	if err != nil {
		return err
	}
	cur, _, err := migrations.Pending(ctx, e.pool)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied %d migration(s); schema version %d\n", n, cur)
	return nil
}
