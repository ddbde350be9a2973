package eventlog

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// sealLock is the advisory lock id that makes one sealer at a time extend the seal chain.
const sealLock = 0x5e_a1_5e_a1

// Key is the server's signing key as the sealer and the verifier use it.
type Key struct {
	ID      string
	Private ed25519.PrivateKey
}

// Sealer periodically signs the global order: each seal covers every event since the
// previous seal, through a running SHA-256 over their positions and hashes, so that an
// event removed, added or moved in the global order breaks the seal that covers it.
type Sealer struct {
	pool   *pgxpool.Pool
	key    Key
	logger *slog.Logger
	now    func() time.Time
}

// NewSealer returns a Sealer signing with key.
func NewSealer(pool *pgxpool.Pool, key Key, logger *slog.Logger) *Sealer {
	return &Sealer{pool: pool, key: key, logger: logger, now: time.Now}
}

// Run seals every interval until ctx ends.
func (s *Sealer) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Seal(ctx); err != nil && ctx.Err() == nil {
			s.logger.ErrorContext(ctx, "seal failed", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Seal appends one seal over the events since the last one, if there are any, and
// returns how many events it covered.
func (s *Sealer) Seal(ctx context.Context) (int64, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return 0, fmt.Errorf("seal: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", sealLock); err != nil {
		return 0, fmt.Errorf("seal: lock: %w", err)
	}
	last, err := lastSeal(ctx, tx)
	if err != nil {
		return 0, err
	}
	h := sha256.New()
	h.Write(last.digest)
	var count int64
	upto := last.upto
	// Only events below the readers' horizon: a transaction still running could commit
	// a lower position later, and the seal would then not cover it.
	rows, err := tx.Query(ctx, `SELECT transaction_id, "offset", hash FROM eventlog.events
		WHERE (transaction_id, "offset") > ($1::xid8, $2::bigint)
		  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY transaction_id, "offset"`, upto.XID, upto.Offset)
	if err != nil {
		return 0, fmt.Errorf("seal: read: %w", err)
	}
	for rows.Next() {
		var p Position
		var hash []byte
		if err := rows.Scan(&p.XID, &p.Offset, &hash); err != nil {
			rows.Close()
			return 0, fmt.Errorf("seal: read: %w", err)
		}
		sealStep(h, p, hash)
		upto = p
		count++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("seal: read: %w", err)
	}
	if count == 0 {
		return 0, nil
	}
	seq := last.seq + 1
	digest := h.Sum(nil)
	sealedAt := s.now().UTC().Truncate(time.Microsecond)
	sig := ed25519.Sign(s.key.Private, sealMessage(seq, upto, count, last.digest, digest, sealedAt, s.key.ID))
	_, err = tx.Exec(ctx, `INSERT INTO eventlog.seals
		(seq, upto_transaction_id, upto_offset, event_count, prev_digest, digest, sealed_at, key_id, signature)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		seq, upto.XID, upto.Offset, count, last.digest, digest, sealedAt, s.key.ID, sig)
	if err != nil {
		return 0, fmt.Errorf("seal: insert: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("seal: commit: %w", err)
	}
	s.logger.DebugContext(ctx, "sealed", slog.Int64("seq", seq), slog.Int64("events", count))
	return count, nil
}

type sealRow struct {
	seq       int64
	upto      Position
	count     int64
	prev      []byte
	digest    []byte
	sealedAt  time.Time
	keyID     string
	signature []byte
}

func lastSeal(ctx context.Context, q Querier) (sealRow, error) {
	var r sealRow
	err := q.QueryRow(ctx, `SELECT seq, upto_transaction_id, upto_offset, digest FROM eventlog.seals
		ORDER BY seq DESC LIMIT 1`).Scan(&r.seq, &r.upto.XID, &r.upto.Offset, &r.digest)
	if errors.Is(err, pgx.ErrNoRows) {
		return sealRow{}, nil
	}
	if err != nil {
		return sealRow{}, fmt.Errorf("seal: last: %w", err)
	}
	return r, nil
}

type byteWriter interface{ Write([]byte) (int, error) }

func sealStep(h byteWriter, p Position, hash []byte) {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], p.XID)
	binary.BigEndian.PutUint64(b[8:], uint64(p.Offset))
	h.Write(b[:])
	h.Write(hash)
}

// sealMessage is what a seal's signature covers.
func sealMessage(seq int64, upto Position, count int64, prev, digest []byte, sealedAt time.Time, keyID string) []byte {
	b := []byte("spelt-seal-v1\x00")
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	b = binary.BigEndian.AppendUint64(b, upto.XID)
	b = binary.BigEndian.AppendUint64(b, uint64(upto.Offset))
	b = binary.BigEndian.AppendUint64(b, uint64(count))
	b = binary.BigEndian.AppendUint64(b, uint64(len(prev)))
	b = append(b, prev...)
	b = append(b, digest...)
	b = binary.BigEndian.AppendUint64(b, uint64(sealedAt.UnixMicro()))
	b = append(b, keyID...)
	return b
}
