package api

import (
	"context"
	"errors"
	"sync"

	"github.com/longhook/longhook/internal/core"
)

// Open streams (a webhook's :listen, deliveries:stream) outlive the
// authentication of the request that opened them, so each looks its API
// key up again every Deps.StreamRecheck — in the store, not the key cache —
// and a listen stream its webhook too; the stream ends when either is gone
// (docs/security.md). A key holds at most Deps.MaxStreamsPerKey streams
// open on one server.

// errStreamKeyRevoked ends a stream whose API key was revoked.
var errStreamKeyRevoked = errors.New("api key revoked")

// streamGate counts the open streams of each API key.
type streamGate struct {
	mu   sync.Mutex
	max  int
	open map[string]int // key id → streams
}

// enter admits one more stream of keyID, or refuses it with
// RESOURCE_EXHAUSTED; an admitted stream calls the returned leave once.
func (g *streamGate) enter(keyID string) (leave func(), err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open[keyID] >= g.max {
		return nil, errorf(core.ErrResourceExhausted,
			"This API key already has %d streams open, the most one key may hold; close one first.", g.max)
	}
	g.open[keyID]++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.open[keyID]--; g.open[keyID] <= 0 {
				delete(g.open, keyID)
			}
		})
	}, nil
}

// keyStillValid looks the stream's key up again: errStreamKeyRevoked when
// it is revoked or gone, a store error as it is.
func (s *server) keyStillValid(ctx context.Context, key core.APIKey) error {
	k, err := s.apiKeys.LookupAPIKey(ctx, key.Digest)
	switch {
	case errors.Is(err, core.ErrNotFound), err == nil && (!k.RevokeTime.IsZero() || k.ID != key.ID):
		return errStreamKeyRevoked
	}
	return err
}
