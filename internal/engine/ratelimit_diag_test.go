package engine

import (
	"context"
	"sync"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// takeRec is one TakeRate call seen by diagStore.
type takeRec struct {
	at         time.Time
	n, granted int
	next       time.Time
}

// diagStore records the TakeRate calls of BenchmarkRateLimitPostgres.
type diagStore struct {
	core.Store
	mu    *sync.Mutex
	takes *[]takeRec
}

func (d diagStore) TakeRate(ctx context.Context, dest string, l core.RateLimit, n int, now time.Time) (int, time.Time, time.Time, error) {
	g, next, at, err := d.Store.TakeRate(ctx, dest, l, n, now)
	d.mu.Lock()
	*d.takes = append(*d.takes, takeRec{time.Now(), n, g, next})
	d.mu.Unlock()
	return g, next, at, err
}
