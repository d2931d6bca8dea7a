package core

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

const (
	base36    = "0123456789abcdefghijklmnopqrstuvwxyz"
	crockford = "0123456789abcdefghjkmnpqrstvwxyz"
)

// NewID returns an opaque resource id: 36 characters of [a-z0-9] drawn
// from crypto/rand (about 186 bits), the shape Gemini uses for webhook ids.
func NewID() string {
	var buf [36]byte
	var rnd [36]byte
	_, _ = rand.Read(rnd[:])
	for i := range buf {
		// 252 = 7*36: reject-free approximation is fine for ids, but keep it
		// uniform anyway by folding with modulo on a byte that is re-drawn
		// rarely.
		b := rnd[i]
		for b >= 252 {
			var one [1]byte
			_, _ = rand.Read(one[:])
			b = one[0]
		}
		buf[i] = base36[b%36]
	}
	return string(buf[:])
}

// NewMessageID returns a delivery id ("msg_" + 26 characters): a ULID in
// lowercase Crockford base32, so ids sort by creation time. It is the
// webhook-id header value.
func NewMessageID(now time.Time) string {
	return "msg_" + newULID(now)
}

// NewSortableID returns a bare 26-character time-sortable id.
func NewSortableID(now time.Time) string { return newULID(now) }

func newULID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:])
	var out [26]byte
	// 128 bits → 26 base32 characters, most significant first.
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
