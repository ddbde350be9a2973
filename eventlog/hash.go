package eventlog

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// chainHash is an event's hash: SHA-256 over the previous hash of its stream and every
// stored field but the position, each length-prefixed so no two different events share
// an encoding. The position is left out because PostgreSQL assigns it during the insert;
// seals cover the global order instead.
func chainHash(prev []byte, id, stream string, version int64, typ string, payload, meta []byte, recorded time.Time) []byte {
	h := sha256.New()
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field(prev)
	field([]byte(id))
	field([]byte(stream))
	binary.BigEndian.PutUint64(n[:], uint64(version))
	h.Write(n[:])
	field([]byte(typ))
	field(payload)
	field(meta)
	binary.BigEndian.PutUint64(n[:], uint64(recorded.UnixMicro()))
	h.Write(n[:])
	return h.Sum(nil)
}

// computeHash recomputes e's hash from its stored content.
func computeHash(e Event) []byte {
	return chainHash(e.PrevHash, e.ID, e.Stream, e.Version, e.Type, e.Payload, e.RawMeta, e.RecordedAt)
}
