package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// TestStatsShapes: rollup deltas of more counter shapes than a connection
// keeps statements for (maxStatsShapes) all add up, those past the bound
// through the statement of every column, and the connection keeps no more
// shapes than the bound.
func TestStatsShapes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "longhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bucket := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var want core.StatsCounts
	shapes := 0
	for i := range core.LatencyBuckets {
		for j := i + 1; j < core.LatencyBuckets && shapes < maxStatsShapes+8; j++ {
			shapes++
			// Three rows of one shape (latency buckets i and j), one call each.
			var ds []core.StatsDelta
			for _, hook := range []string{"a", "b", core.StatsTotal} {
				d := core.StatsDelta{StatsKey: core.StatsKey{ProjectID: "p", Bucket: bucket, WebhookID: hook}}
				d.Succeeded = 2
				d.Latency[i], d.Latency[j] = 1, 1
				ds = append(ds, d)
			}
			want.Succeeded += 2
			want.Latency[i]++
			want.Latency[j]++
			if err := s.inRawTx(ctx, func(tx *rawTx) error { return addStats(tx, ds) }); err != nil {
				t.Fatalf("shape %d: %v", shapes, err)
			}
		}
	}
	if n := len(s.raw.statsShapes); n != maxStatsShapes {
		t.Errorf("%d shapes kept, want %d", n, maxStatsShapes)
	}
	for _, hook := range []string{"a", "b", ""} {
		rows, err := s.Stats(ctx, core.StatsParams{ProjectID: "p", WebhookID: hook, Since: bucket, Until: bucket.Add(time.Hour)})
		if err != nil || len(rows) != 1 {
			t.Fatalf("Stats %q: %+v, %v", hook, rows, err)
		}
		if rows[0].StatsCounts != want {
			t.Errorf("webhook %q: %+v, want %+v", hook, rows[0].StatsCounts, want)
		}
	}
}
