package core

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
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
	var out [4 + 26]byte
	copy(out[:], "msg_")
	putULID(out[4:], ulidBits(now))
	return string(out[:])
}

// NewSortableID returns a bare 26-character time-sortable id.
func NewSortableID(now time.Time) string { return newULID(now) }

// SortableIDBound returns the 10-character time prefix of the sortable
// ids of t's millisecond: every NewSortableID made before t sorts below
// it, every one made at or after t's millisecond at or above it. Prefix it
// with "msg_" for delivery ids. Stores use it to range over ids by time.
func SortableIDBound(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	return encodeULID(b)[:10]
}

// ValidMessageID reports whether s has the shape of a delivery id.
func ValidMessageID(s string) bool {
	rest, ok := strings.CutPrefix(s, "msg_")
	if !ok || len(rest) != 26 || rest[0] > '7' {
		return false
	}
	for i := range len(rest) {
		if strings.IndexByte(crockford, rest[i]) < 0 {
			return false
		}
	}
	return true
}

// MessageIDMillis returns the Unix millisecond a delivery id was made in
// (the first 10 characters of its ULID).
func MessageIDMillis(id string) int64 {
	rest, _ := strings.CutPrefix(id, "msg_")
	var ms int64
	for i := 0; i < 10 && i < len(rest); i++ {
		ms = ms<<5 | int64(max(strings.IndexByte(crockford, rest[i]), 0))
	}
	return ms
}

// MessageIDFloor returns the smallest delivery id of Unix millisecond ms.
func MessageIDFloor(ms int64) string {
	return "msg_" + SortableIDBound(time.UnixMilli(ms)) + "0000000000000000"
}

func newULID(now time.Time) string { return encodeULID(ulidBits(now)) }

// ulidBits is a new ULID's 128 bits: now's milliseconds, then random.
func ulidBits(now time.Time) [16]byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:])
	return b
}

// encodeULID writes 128 bits as 26 lowercase Crockford base32 characters,
// most significant first.
func encodeULID(b [16]byte) string {
	var out [26]byte
	putULID(out[:], b)
	return string(out[:])
}

// putULID writes b as 26 characters into out.
func putULID(out []byte, b [16]byte) {
	out = out[:26]
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
}
