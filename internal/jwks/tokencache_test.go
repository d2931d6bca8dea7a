package jwks

import (
	"strconv"
	"testing"
	"time"
)

// The token cache drops tokens that can no longer be reused: signing one
// token per delivery for an hour at a steady rate keeps it near a token
// lifetime's worth of deliveries, not growing until a hard cap (it grew by
// about 1 KiB per dynamic delivery up to 50,000 before).
func TestTokenCacheForgetsExpiredTokens(t *testing.T) {
	t.Parallel()
	c := tokenCache{m: map[string]cachedToken{}}
	now := time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC)
	const ttl = 5 * time.Minute
	most := 0
	for i := range 36000 { // 10 a second for an hour
		now = now.Add(100 * time.Millisecond)
		c.put(strconv.Itoa(i), cachedToken{token: "t", kid: "k", exp: now.Add(ttl)}, now)
		most = max(most, len(c.m))
	}
	// 4 minutes of reusable tokens are 2,400; sweeps run when the cache
	// has doubled, at 4,096 at the least.
	if most > 2*tokenSweepMin {
		t.Fatalf("the cache held up to %d tokens; want at most %d", most, 2*tokenSweepMin)
	}
	if _, ok := c.get("35999", "k", now); !ok {
		t.Fatal("the newest token is not reused")
	}
}
