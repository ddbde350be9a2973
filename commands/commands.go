package commands

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"spelt.dev/spelt/eventlog"
	"spelt.dev/spelt/internal/appservice"
	"spelt.dev/spelt/internal/pgbatch"
	"spelt.dev/spelt/sql/gen/writedb"
)

// Config is what commands need to know of the server's configuration.
type Config struct {
	ServerName           string
	RegistrationEnabled  bool
	RegistrationRequires bool // registration needs a registration token
	Guests               bool // guest accounts are allowed
	AccessTokenLifetime  time.Duration
	// RefreshableLifetime is the lifetime of access tokens issued with a refresh token.
	RefreshableLifetime time.Duration
	// RegistrationRequiresEmail makes registration prove an e-mail address
	// (m.login.email.identity), which becomes the account's 3PID.
	RegistrationRequiresEmail bool
	// Terms is the policy registration asks users to accept (m.login.terms); nil: none.
	Terms *Terms
	// UIASecret signs the IDs of registration sessions not stored yet; every process of
	// a server must share it. Empty: a random one per process.
	UIASecret []byte
	// ThreepidTokenLifetime is how long a mailed validation token works (an hour when 0).
	ThreepidTokenLifetime time.Duration
	// SigningKey and SigningKeyID sign the server's room events.
	SigningKey   ed25519.PrivateKey
	SigningKeyID string
	// DefaultRoomVersion is the version of new rooms ("10" when empty).
	DefaultRoomVersion string
	// Appservices are the registered application services (nil: none).
	Appservices *appservice.Registry
}

// Commands runs commands against the log and the write model.
type Commands struct {
	pool   *pgxpool.Pool
	log    *eventlog.Log
	q      *writedb.Queries
	cfg    Config
	logger *slog.Logger
	now    func() time.Time
	rooms  roomMemos
	idps   IdentityProviders // nil: no single sign-on
	ids    IdentityServers   // nil: no identity server trusted

	secretOnce sync.Once
	secret     []byte
	hashSlots  chan struct{} // bounds concurrent password hashing
}

// New returns Commands.
func New(pool *pgxpool.Pool, log *eventlog.Log, cfg Config, logger *slog.Logger) *Commands {
	return &Commands{pool: pool, log: log, q: writedb.New(), cfg: cfg, logger: logger, now: time.Now,
		hashSlots: make(chan struct{}, 2*runtime.GOMAXPROCS(0))}
}

// Meta identifies who issues a command and from where; it becomes the events' metadata.
type Meta = eventlog.Metadata

// decider reads the write model in tx and returns the events to append. If it returns
// events and an error, the events are still appended and committed (e.g. a new
// user-interactive authentication session) and the error is returned after.
type decider func(ctx context.Context, tx pgx.Tx) ([]eventlog.NewEvent, error)

// headsKey is the context key under which a decider finds where to leave the heads of
// streams it read under a lock (openRoom), so that the append need not read them again.
type headsKey struct{}

// knowHead records the head of stream for the append of the running command.
func knowHead(ctx context.Context, stream string, h eventlog.StreamHead) {
	if heads, ok := ctx.Value(headsKey{}).(map[string]eventlog.StreamHead); ok {
		heads[stream] = h
	}
}

// maxAttempts bounds retries after a stream version conflict.
const maxAttempts = 5

// run executes decide and appends its events with the write-model changes they imply,
// in one transaction, retrying when a concurrent writer moved a stream first. It
// returns the position of the last event appended.
func (c *Commands) run(ctx context.Context, meta Meta, decide decider) (eventlog.Position, error) {
	for attempt := 1; ; attempt++ {
		pos, err := c.runOnce(ctx, meta, decide)
		if errors.Is(err, eventlog.ErrVersionConflict) && attempt < maxAttempts {
			continue
		}
		return pos, err
	}
}

func (c *Commands) runOnce(ctx context.Context, meta Meta, decide decider) (pos eventlog.Position, err error) {
	// BEGIN goes with the command's first statement (most commands' first round trip
	// is then their own reads).
	tx, err := pgbatch.BeginLazy(ctx, c.pool)
	if err != nil {
		return pos, err
	}
	wrote := false
	defer func() {
		if rbErr := tx.Rollback(context.WithoutCancel(ctx)); rbErr == nil && wrote {
			// A rolled-back writer held back the readers' horizon: let them look again.
			c.log.Committed()
		}
	}()
	heads := map[string]eventlog.StreamHead{}
	var hooks afterCommit
	dctx := context.WithValue(context.WithValue(ctx, headsKey{}, heads), afterCommitKey{}, &hooks)
	news, decideErr := decide(dctx, tx)
	if len(news) == 0 {
		return pos, decideErr
	}
	wrote = true
	events, err := c.commit(ctx, tx, meta, heads, news)
	if err != nil {
		return pos, err
	}
	wrote = false
	for _, fn := range hooks {
		fn(events)
	}
	return events[len(events)-1].Position, decideErr
}

// commit appends news after the stream heads known (the others are read) with the
// write-model changes they imply, and commits tx: the append and the write model's
// statements go with the COMMIT, in one round trip. The events' positions are known
// once it is back; the write model does not need them.
func (c *Commands) commit(ctx context.Context, tx *pgbatch.LazyTx, meta Meta, known map[string]eventlog.StreamHead, news []eventlog.NewEvent) ([]eventlog.Event, error) {
	var wm pgbatch.DB
	events, err := c.log.QueueAppend(ctx, tx, wm.Batch(), meta, known, news...)
	if err != nil {
		return nil, err
	}
	if err := queueWriteModel(ctx, &wm, events, news); err != nil {
		return nil, err
	}
	if err := tx.CommitBatch(ctx, wm.Batch()); err != nil {
		c.log.Committed() // rolled back: it held the readers' horizon back all the same
		return nil, fmt.Errorf("commit: %w", err)
	}
	c.log.Committed(eventlog.TypesOf(events)...)
	return events, nil
}

// Terms is a policy users accept when they register.
type Terms struct {
	Name, Version, URL string
}
