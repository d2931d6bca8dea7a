package postgres

import (
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/storetest"
)

func TestScratchTiming(t *testing.T) {
	if os.Getenv("SCRATCH") == "" {
		t.Skip()
	}
	s := newStore(t)
	f := newFixture(t, s, 10)
	n0 := 2000
	if os.Getenv("N") != "" {
		n0 = 20000
	}
	f.publish(n0/10*10/10, storetest.T0)
	t.Logf("published")
	now := storetest.T0.Add(time.Second)
	var claimD, compD time.Duration
	n := 0
	for i := 0; i < n0/250; i++ {
		if i%20 == 0 {
			t.Logf("i=%d claim %v complete %v", i, claimD, compD)
		}
		t0 := time.Now()
		cs, err := s.ClaimDeliveries(f.ctx, core.ClaimParams{Owner: "o", Now: now, Limit: 250, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		claimD += time.Since(t0)
		comps := make([]core.Completion, len(cs))
		for i, c := range cs {
			comps[i] = succeeded(c, "o", now)
		}
		t1 := time.Now()
		if err := s.CompleteDeliveries(f.ctx, comps); err != nil {
			t.Fatal(err)
		}
		compD += time.Since(t1)
		n += len(cs)
	}
	t.Logf("n=%d claim %v complete %v", n, claimD, compD)
	if os.Getenv("EXPLAIN2") != "" {
		cs, _ := s.ClaimDeliveries(f.ctx, core.ClaimParams{Owner: "o", Now: now, Limit: 250, Lease: time.Minute})
		var ids, owners, st, errs []string
		var next, at []time.Time
		var code []int32
		for _, c := range cs {
			ids = append(ids, c.ID)
			owners = append(owners, "o")
			st = append(st, "succeeded")
			errs = append(errs, "")
			next = append(next, time.Time{})
			at = append(at, now)
			code = append(code, 200)
		}
		s.run(f.ctx, true, func(c *pgx.Conn) error {
			rows, _ := c.Query(f.ctx, "EXPLAIN (ANALYZE, BUFFERS) "+completeSQL, ids, owners, st, next, code, errs, at)
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			for _, l := range lines {
				t.Log(l)
			}
			return err
		})
	}
	if os.Getenv("EXPLAIN") != "" {
		s.run(f.ctx, true, func(c *pgx.Conn) error {
			rows, _ := c.Query(f.ctx, "EXPLAIN (ANALYZE, BUFFERS) "+claimSQL, "o", now, now.Add(time.Minute), []string{}, int64(250), int64(62))
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			for _, l := range lines {
				t.Log(l)
			}
			return err
		})
	}
}
