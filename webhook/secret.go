package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// SecretPrefix starts every secret in its text form.
const SecretPrefix = "whsec_"

// secretBytes is the key length [NewSecret] generates: 256 bits, the
// SHA-256 block-size sweet spot and within the Standard Webhooks range of
// 24 to 64 bytes.
const secretBytes = 32

// A Secret is a parsed HMAC signing key. Create one with [ParseSecret]; the
// zero Secret is not usable. A Secret is safe for concurrent use and cheap
// to copy: copies share a pool of keyed HMAC states, so signing does not
// re-derive the key pads on every call.
//
// A Secret never prints its key: formatting it with fmt shows only an
// opaque pointer.
type Secret struct {
	s *secretState
}

type secretState struct {
	pool sync.Pool // of *macState
}

// macState is one keyed HMAC-SHA256 with scratch space, reused across calls
// through the pool so that the hot path allocates nothing.
type macState struct {
	h       hash.Hash
	scratch []byte            // "{id}.{ts}." prefix
	sum     [sha256.Size]byte // MAC output
}

// ParseSecret parses a secret in the Standard Webhooks form "whsec_" followed
// by standard base64 of the key. The prefix is optional and the base64
// padding may be omitted. Spaces and line breaks around it are ignored (a
// secret read from a file keeps its trailing newline). An empty key is
// rejected. Errors wrap [ErrInvalidKey] and never echo the input.
func ParseSecret(s string) (Secret, error) {
	b64 := strings.TrimPrefix(strings.TrimSpace(s), SecretPrefix)
	var key []byte
	var err error
	if len(b64)%4 == 0 {
		key, err = base64.StdEncoding.DecodeString(b64)
	} else {
		key, err = base64.RawStdEncoding.DecodeString(b64)
	}
	if err != nil {
		return Secret{}, fmt.Errorf("%w: secret is not standard base64", ErrInvalidKey)
	}
	if len(key) == 0 {
		return Secret{}, fmt.Errorf("%w: secret is empty", ErrInvalidKey)
	}
	return newSecret(key), nil
}

// NewSecret returns a fresh random secret in text form: "whsec_" followed by
// padded standard base64 of 32 bytes from [crypto/rand].
func NewSecret() (string, error) {
	var key [secretBytes]byte
	if _, err := rand.Read(key[:]); err != nil {
		return "", fmt.Errorf("webhook: generate secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key[:]), nil
}

func newSecret(key []byte) Secret {
	st := &secretState{}
	st.pool.New = func() any {
		return &macState{h: hmac.New(sha256.New, key), scratch: make([]byte, 0, 64)}
	}
	return Secret{s: st}
}

// mac computes HMAC-SHA256(key, "{id}.{unix}.{body}") into out.
func (s Secret) mac(out *[sha256.Size]byte, id string, unix int64, body []byte) {
	if s.s == nil {
		panic("webhook: use of zero Secret; create it with ParseSecret")
	}
	m := s.s.pool.Get().(*macState)
	m.h.Reset()
	m.scratch = appendSignedPrefix(m.scratch[:0], id, unix)
	m.h.Write(m.scratch)
	m.h.Write(body)
	m.h.Sum(m.sum[:0])
	*out = m.sum
	if cap(m.scratch) > 4096 {
		m.scratch = make([]byte, 0, 64) // do not pin a huge id in the pool
	}
	s.s.pool.Put(m)
}
