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
}

// New returns Queries reading through pool.
func New(pool *pgxpool.Pool) *Queries {
	return &Queries{pool: pool, q: readdb.New(), now: time.Now}
}

// Identity is who an access token belongs to.
type Identity struct {
	UserID   string
	DeviceID string
	IsGuest  bool
	IsAdmin  bool
	// Retires is the refresh token this access token was refreshed from, until its
	// first use retires it.
	Retires []byte
}

// Authenticate resolves an access token. Expired tokens, tokens of deactivated users
// and unknown tokens all fail with ErrUnknownToken; expired reports whether the token
// existed but expired (a client may then refresh: soft logout).
func (q *Queries) Authenticate(ctx context.Context, token string) (id Identity, expired bool, err error) {
	row, err := q.q.AccessTokenLookup(ctx, q.pool, tokens.Hash(token))
	if errors.Is(err, pgx.ErrNoRows) {
		return Identity{}, false, ErrUnknownToken
	}
	if err != nil {
		return Identity{}, false, fmt.Errorf("authenticate: %w", err)
	}
	if row.Deactivated {
		return Identity{}, false, ErrUnknownToken
	}
	if row.ExpiresAt != nil && !q.now().Before(*row.ExpiresAt) {
		return Identity{}, true, ErrUnknownToken
	}
	return Identity{UserID: row.UserID, DeviceID: row.DeviceID, IsGuest: row.IsGuest, IsAdmin: row.IsAdmin, Retires: row.Retires}, false, nil
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
