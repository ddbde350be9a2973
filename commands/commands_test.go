package commands_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"spelt.dev/spelt/commands"
	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/testkit"
	"spelt.dev/spelt/sql/migrations"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// migrate is the test databases' migration.
var migrate = migrations.UpURL

func newCommands(t *testing.T, cfg commands.Config) (*commands.Commands, *pgxpool.Pool) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), testkit.DB(t, migrate))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if cfg.ServerName == "" {
		cfg.ServerName = "example.org"
	}
	logger := slog.New(slog.DiscardHandler)
	return commands.New(pool, eventlog.New(logger, nil), cfg, logger), pool
}

var meta = eventlog.Metadata{Origin: eventlog.OriginClient, RequestID: "test"}

// register runs the two requests of an m.login.dummy registration.
func register(ctx context.Context, c *commands.Commands, username string) (commands.Registered, error) {
	_, err := c.Register(ctx, meta, commands.Register{Username: username, Password: "pw"})
	var uia *commands.AuthRequiredError
	if !errors.As(err, &uia) {
		return commands.Registered{}, err
	}
	return c.Register(ctx, meta, commands.Register{Username: username, Password: "pw",
		Auth: &commands.AuthDict{Type: commands.StageDummy, Session: uia.Session}})
}

func TestConcurrentRegistrationsOfOneName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, pool := newCommands(t, commands.Config{RegistrationEnabled: true})
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = register(ctx, c, "contested")
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, commands.ErrUserInUse):
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d registrations of one name succeeded, want 1", won)
	}
	var events int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM eventlog.events WHERE type = $1`, eventlog.TypeAccountRegistered).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != 1 {
		t.Errorf("%d account.registered events, want 1", events)
	}
}

func TestRegisterFlow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _ := newCommands(t, commands.Config{RegistrationEnabled: true})

	_, err := c.Register(ctx, meta, commands.Register{Username: "ann", Password: "pw"})
	var uia *commands.AuthRequiredError
	if !errors.As(err, &uia) || uia.Session == "" || len(uia.Flows) != 1 || uia.Flows[0][0] != commands.StageDummy || uia.Cause != nil {
		t.Fatalf("first request: %v", err)
	}
	// The wrong stage keeps the session and says why.
	_, err = c.Register(ctx, meta, commands.Register{Username: "ann", Password: "pw",
		Auth: &commands.AuthDict{Type: commands.StageRegistrationToken, Session: uia.Session}})
	var again *commands.AuthRequiredError
	if !errors.As(err, &again) || again.Session != uia.Session || again.Cause == nil {
		t.Fatalf("wrong stage: %v", err)
	}
	reg, err := c.Register(ctx, meta, commands.Register{Username: "ann", Password: "pw", InhibitLogin: true,
		Auth: &commands.AuthDict{Type: commands.StageDummy, Session: uia.Session}})
	if err != nil || reg.UserID != "@ann:example.org" || reg.AccessToken != "" || reg.Position.IsZero() {
		t.Fatalf("complete: %+v %v", reg, err)
	}
	login, err := c.Login(ctx, meta, commands.Login{User: "ANN", Password: "pw"})
	if err != nil || login.UserID != "@ann:example.org" || login.AccessToken == "" {
		t.Fatalf("login: %+v %v", login, err)
	}
	if _, err := c.Login(ctx, meta, commands.Login{User: "ann", Password: "nope"}); !errors.Is(err, commands.ErrInvalidCredentials) {
		t.Errorf("wrong password: %v", err)
	}
}

func TestRegisterRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	closed, _ := newCommands(t, commands.Config{})
	if _, err := closed.Register(ctx, meta, commands.Register{Username: "x"}); !errors.Is(err, commands.ErrRegistrationDisabled) {
		t.Errorf("disabled: %v", err)
	}
	c, _ := newCommands(t, commands.Config{RegistrationEnabled: true})
	var bad *commands.InvalidUsernameError
	if _, err := c.Register(ctx, meta, commands.Register{Username: "Upper"}); !errors.As(err, &bad) {
		t.Errorf("invalid name: %v", err)
	}
	if _, err := c.Register(ctx, meta, commands.Register{Guest: true}); !errors.Is(err, commands.ErrGuestsDisabled) {
		t.Errorf("guest: %v", err)
	}
	if _, err := c.Register(ctx, meta, commands.Register{Username: "x",
		Auth: &commands.AuthDict{Type: commands.StageDummy, Session: "unknown"}}); !errors.Is(err, commands.ErrUnknownSession) {
		t.Errorf("unknown session: %v", err)
	}
}

// TestWriteModelRebuild: the write model that commands maintained equals the one
// rebuilt from the log.
func TestWriteModelRebuild(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, pool := newCommands(t, commands.Config{RegistrationEnabled: true})
	for _, u := range []string{"a1", "a2", "a3"} {
		reg, err := register(ctx, c, u)
		if err != nil {
			t.Fatal(err)
		}
		if u == "a2" {
			if _, err := c.Logout(ctx, meta, reg.UserID, reg.DeviceID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, _, err := c.CreateRegistrationToken(ctx, meta, "tok", nil, nil); err != nil {
		t.Fatal(err)
	}
	dump := func() string {
		var s string
		err := pool.QueryRow(ctx, `SELECT concat_ws('|',
			(SELECT string_agg(x::text, ',' ORDER BY x::text) FROM writemodel.users x),
			(SELECT string_agg(x::text, ',' ORDER BY x::text) FROM writemodel.devices x),
			(SELECT string_agg(x::text, ',' ORDER BY x::text) FROM writemodel.uia_sessions x),
			(SELECT string_agg(x::text, ',' ORDER BY x::text) FROM writemodel.registration_tokens x))`).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := dump()
	if err := commands.RebuildWriteModel(ctx, pool, nil); err != nil {
		t.Fatal(err)
	}
	if after := dump(); after != before {
		t.Fatalf("write model differs after rebuild\nbefore %s\nafter  %s", before, after)
	}
}
