package console

import "sync"

// A live stream (a webhook page's deliveries) outlives the request that
// opened it, so it looks its session, the session's API key — in the
// store, not a cache — and its webhook up again every Deps.StreamRecheck,
// and ends when any is gone (docs/security.md; the API's :listen and
// deliveries:stream do the same). A session holds at most
// Deps.MaxStreamsPerSession streams open at once.

// streamGate counts the open streams of each session.
type streamGate struct {
	mu   sync.Mutex
	max  int
	open map[string]int // session id → streams
}

// enter admits one more stream of the session, or reports false; an
// admitted stream calls the returned leave once.
func (g *streamGate) enter(sessionID string) (leave func(), ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open[sessionID] >= g.max {
		return nil, false
	}
	g.open[sessionID]++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.open[sessionID]--; g.open[sessionID] <= 0 {
				delete(g.open, sessionID)
			}
		})
	}, true
}
