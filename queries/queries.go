package queries

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"spelt.dev/spelt/internal/tokens"
	"spelt.dev/spelt/sql/gen/readdb"
)

// Errors of queries.
var (
	ErrUnknownToken = errors.New("unknown access token")
	ErrNotFound     = errors.New("not found")
)

// Queries answers reads.
type Queries struct {
	pool *pgxpool.Pool
	q    *readdb.Queries
	now  func() time.Time
	// tokens remembers resolved access tokens, by hash, so that a request costs no
	// round trip to authenticate. It is emptied whenever the accounts read model moves
	// (ForgetTokens: a logout, a refresh, a deactivation may have revoked any token),
	// and no entry is used longer than tokenCacheTTL in any case.
	tokens readCache[string, cachedToken]
	// activity gives users' last requests to this process (nil: unknown).
	activity  func(userID string) time.Time
	keyCounts readCache[[2]string, keyCounts]
	// ignored caches users' m.ignored_user_list; erased the erased users.
	ignored readCache[string, map[string]bool]
	erased  readCache[struct{}, map[string]int64]
}

// New returns Queries reading through pool.
func New(pool *pgxpool.Pool) *Queries {
	return &Queries{pool: pool, q: readdb.New(), now: time.Now, tokens: readCache[string, cachedToken]{max: tokenCacheMax},
		keyCounts: readCache[[2]string, keyCounts]{max: 100_000}, ignored: readCache[string, map[string]bool]{max: 100_000}}
}

type cachedToken struct {
	id        Identity
	expiresAt *time.Time
	at        time.Time
}

const (
	tokenCacheTTL = 10 * time.Second
	tokenCacheMax = 100_000
)

// ForgetTokens empties the access-token cache; call it whenever the accounts read model
// moves on.
func (q *Queries) ForgetTokens() { q.tokens.forget() }

// Identity is who an access token belongs to.
type Identity struct {
	UserID   string
	DeviceID string
	IsGuest  bool
	IsAdmin  bool
	// Appservice is the application service acting as UserID (its token was used).
	Appservice string
	// Retires is the refresh token this access token was refreshed from, until its
	// first use retires it.
	Retires []byte
}

// Authenticate resolves an access token. Expired tokens, tokens of deactivated users
// and unknown tokens all fail with ErrUnknownToken; expired reports whether the token
// existed but expired (a client may then refresh: soft logout).
func (q *Queries) Authenticate(ctx context.Context, token string) (id Identity, expired bool, err error) {
	hash := tokens.Hash(token)
	now := q.now()
	c, gen, hit := q.tokens.get(string(hash))
	if hit && now.Sub(c.at) < tokenCacheTTL && (c.expiresAt == nil || now.Before(*c.expiresAt)) {
		return c.id, false, nil
	}
	id, expired, expiresAt, err := q.authenticate(ctx, hash)
	if err == nil && id.Retires == nil {
		q.tokens.put(string(hash), cachedToken{id: id, expiresAt: expiresAt, at: now}, gen)
	}
	return id, expired, err
}

func (q *Queries) authenticate(ctx context.Context, hash []byte) (id Identity, expired bool, expiresAt *time.Time, err error) {
	row, err := q.q.AccessTokenLookup(ctx, q.pool, hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return Identity{}, false, nil, ErrUnknownToken
	}
	if err != nil {
		return Identity{}, false, nil, fmt.Errorf("authenticate: %w", err)
	}
	if row.Deactivated {
		return Identity{}, false, nil, ErrUnknownToken
	}
	if row.ExpiresAt != nil && !q.now().Before(*row.ExpiresAt) {
		return Identity{}, true, nil, ErrUnknownToken
	}
	return Identity{UserID: row.UserID, DeviceID: row.DeviceID, IsGuest: row.IsGuest, IsAdmin: row.IsAdmin, Retires: row.Retires}, false, row.ExpiresAt, nil
}

// AppserviceIdentity is who an application service acts as: userID, which must be an
// active account (ErrUnknownToken otherwise, as Synapse answers).
func (q *Queries) AppserviceIdentity(ctx context.Context, appservice, userID string) (Identity, error) {
	a, err := q.q.AccountGet(ctx, q.pool, userID)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && a.Deactivated {
		return Identity{}, ErrNotFound
	}
	if err != nil {
		return Identity{}, fmt.Errorf("appservice identity: %w", err)
	}
	return Identity{UserID: userID, IsGuest: a.IsGuest, IsAdmin: a.IsAdmin, Appservice: appservice}, nil
}

// LocalpartTaken reports whether an account with the localpart exists.
func (q *Queries) LocalpartTaken(ctx context.Context, localpart string) (bool, error) {
	taken, err := q.q.AccountLocalpartExists(ctx, q.pool, localpart)
	if err != nil {
		return false, fmt.Errorf("localpart taken: %w", err)
	}
	return taken, nil
}

// RegistrationToken is a registration token's state.
type RegistrationToken struct {
	Token       string
	UsesAllowed *int32
	Pending     int32
	Completed   int32
	ExpiryTime  *time.Time
	Revoked     bool
}

// RegistrationTokenLookup returns the token or ErrNotFound.
func (q *Queries) RegistrationTokenLookup(ctx context.Context, token string) (RegistrationToken, error) {
	row, err := q.q.RegistrationTokenLookup(ctx, q.pool, token)
	if errors.Is(err, pgx.ErrNoRows) {
		return RegistrationToken{}, ErrNotFound
	}
	if err != nil {
		return RegistrationToken{}, fmt.Errorf("registration token: %w", err)
	}
	return RegistrationToken(row), nil
}

// RegistrationTokens lists the tokens not revoked.
func (q *Queries) RegistrationTokens(ctx context.Context) ([]RegistrationToken, error) {
	rows, err := q.q.RegistrationTokenList(ctx, q.pool)
	if err != nil {
		return nil, fmt.Errorf("registration tokens: %w", err)
	}
	out := make([]RegistrationToken, len(rows))
	for i, r := range rows {
		out[i] = RegistrationToken(r)
	}
	return out, nil
}
