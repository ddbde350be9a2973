package eventlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"hash"
)

// Problem is one place where the log is not what was appended.
type Problem struct {
	Position Position
	Stream   string
	Version  int64
	// Kind is "edited", "removed", "reordered", "seal" or "signature".
	Kind   string
	Detail string
}

func (p Problem) String() string {
	if p.Stream == "" {
		return fmt.Sprintf("%s at %s: %s", p.Kind, p.Position, p.Detail)
	}
	return fmt.Sprintf("%s at %s (stream %s version %d): %s", p.Kind, p.Position, p.Stream, p.Version, p.Detail)
}

// Report is the outcome of Verify.
type Report struct {
	Events   int64
	Streams  int
	Seals    int64
	Unsealed int64
	// Problems lists what is wrong, the first one in global order first. Empty means
	// the log is intact.
	Problems []Problem
}

// Verify walks the whole log in global order and checks every stream's hash chain and
// every seal. keys maps key ids to public keys. progress, if not nil, is called every
// few thousand events with the number checked so far.
func Verify(ctx context.Context, q Querier, keys map[string]ed25519.PublicKey, progress func(int64)) (Report, error) {
	var rep Report
	seals, err := loadSeals(ctx, q)
	if err != nil {
		return rep, err
	}
	rep.Seals = int64(len(seals))

	type head struct {
		version int64
		hash    []byte
	}
	heads := map[string]*head{}
	var (
		si       int       // next seal to reach
		running  hash.Hash // digest since the previous seal
		inSeal   int64     // events since the previous seal
		prevDig  []byte    // digest of the previous seal
		problems = &rep.Problems
	)
	running = sha256.New()
	problem := func(p Problem) {
		if len(*problems) < 100 {
			*problems = append(*problems, p)
		}
	}
	closeSeal := func(s sealRow, at Position) {
		digest := running.Sum(nil)
		switch {
		case !bytes.Equal(s.prev, prevDig):
			problem(Problem{Position: at, Kind: "seal", Detail: fmt.Sprintf("seal %d does not follow seal %d", s.seq, s.seq-1)})
		case s.count != inSeal || !bytes.Equal(digest, s.digest):
			problem(Problem{Position: at, Kind: "reordered", Detail: fmt.Sprintf(
				"seal %d covered %d events up to %s; the log now has %d there with another order or content: an event was removed, inserted or moved",
				s.seq, s.count, s.upto, inSeal)})
		}
		pub, ok := keys[s.keyID]
		msg := sealMessage(s.seq, s.upto, s.count, s.prev, s.digest, s.sealedAt, s.keyID)
		if !ok {
			problem(Problem{Position: at, Kind: "signature", Detail: fmt.Sprintf("seal %d is signed with unknown key %s", s.seq, s.keyID)})
		} else if !ed25519.Verify(pub, msg, s.signature) {
			problem(Problem{Position: at, Kind: "signature", Detail: fmt.Sprintf("seal %d has a bad signature", s.seq)})
		}
		prevDig = s.digest
		running = sha256.New()
		running.Write(s.digest)
		inSeal = 0
	}

	rows, err := q.Query(ctx, `SELECT `+eventColumns+` FROM eventlog.events ORDER BY transaction_id, "offset"`)
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return rep, err
		}
		rep.Events++
		if progress != nil && rep.Events%10000 == 0 {
			progress(rep.Events)
		}
		// A seal whose end we passed without meeting it exactly: its last event is gone.
		for si < len(seals) && seals[si].upto.Less(e.Position) {
			closeSeal(seals[si], e.Position)
			si++
		}
		h := heads[e.Stream]
		if h == nil {
			h = &head{}
			heads[e.Stream] = h
		}
		switch {
		case !bytes.Equal(computeHash(e), e.Hash):
			problem(Problem{Position: e.Position, Stream: e.Stream, Version: e.Version, Kind: "edited",
				Detail: "content does not match its hash"})
		case e.Version != h.version+1 && e.Version > h.version:
			problem(Problem{Position: e.Position, Stream: e.Stream, Version: e.Version, Kind: "removed",
				Detail: fmt.Sprintf("stream jumps from version %d to %d", h.version, e.Version)})
		case e.Version <= h.version:
			problem(Problem{Position: e.Position, Stream: e.Stream, Version: e.Version, Kind: "reordered",
				Detail: fmt.Sprintf("version %d comes after version %d in the global order", e.Version, h.version)})
		case !bytes.Equal(e.PrevHash, h.hash):
			problem(Problem{Position: e.Position, Stream: e.Stream, Version: e.Version, Kind: "edited",
				Detail: "previous hash does not match the stream's previous event"})
		}
		if e.Version > h.version {
			h.version, h.hash = e.Version, e.Hash
		}
		sealStep(running, e.Position, e.Hash)
		inSeal++
		if si < len(seals) && seals[si].upto == e.Position {
			closeSeal(seals[si], e.Position)
			si++
		}
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	for ; si < len(seals); si++ {
		closeSeal(seals[si], seals[si].upto)
	}
	rep.Unsealed = inSeal
	rep.Streams = len(heads)
	return rep, nil
}

func loadSeals(ctx context.Context, q Querier) ([]sealRow, error) {
	rows, err := q.Query(ctx, `SELECT seq, upto_transaction_id, upto_offset, event_count, prev_digest,
		digest, sealed_at, key_id, signature FROM eventlog.seals ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("verify: seals: %w", err)
	}
	defer rows.Close()
	var out []sealRow
	for rows.Next() {
		var s sealRow
		if err := rows.Scan(&s.seq, &s.upto.XID, &s.upto.Offset, &s.count, &s.prev, &s.digest,
			&s.sealedAt, &s.keyID, &s.signature); err != nil {
			return nil, fmt.Errorf("verify: seals: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
