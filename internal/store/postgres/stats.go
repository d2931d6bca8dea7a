package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
)

// statsEventsRow is the webhook_id under which publishes count a
// project's events, beside its total row (core.StatsTotal) where
// completions count attempts: the two rows together are the project's
// total. On one row, every completion waited for the row lock that the
// publish before it held through its WAL flush (a quarter of the backends'
// samples in a single-publish run were that wait), and publishes waited
// for completions.
const statsEventsRow = core.StatsTotal + "events"

// totalRows are the rows of a project's total.
var totalRows = []string{core.StatsTotal, statsEventsRow}

// statsCounters is how many of statsCols precede the latency histogram.
const statsCounters = 4

// statsCols are the rollup's counter columns, in core.StatsCounts order.
var statsCols = func() []string {
	cols := []string{"events", "succeeded", "retrying", "failed"}
	for i := range core.LatencyBuckets {
		cols = append(cols, fmt.Sprintf("lat%d", i))
	}
	return cols
}()

// statsConflict adds a new row's counters to the existing row.
var statsConflict = func() string {
	var set []string
	for _, c := range statsCols {
		set = append(set, c+" = stats."+c+" + excluded."+c)
	}
	return ` ON CONFLICT (project_id, webhook_id, bucket) DO UPDATE SET ` + strings.Join(set, ", ")
}()

// statsDeltasSQL upserts rollup deltas given as one array per column
// (keys first, then counters in statsCols order), in the order given.
var statsDeltasSQL = func() string {
	var arrs []string
	for i := range 3 + len(statsCols) {
		t := "bigint[]"
		if i == 0 || i == 2 {
			t = "text[]"
		}
		arrs = append(arrs, fmt.Sprintf("$%d::%s", i+1, t))
	}
	return `INSERT INTO stats (project_id, bucket, webhook_id, ` + strings.Join(statsCols, ", ") +
		`) SELECT * FROM unnest(` + strings.Join(arrs, ", ") + `)` + statsConflict
}()

// statsDeltaArgs turns deltas into statsDeltasSQL's arrays, as arrays.go's
// types (a completion queues the statement in every batch).
func statsDeltaArgs(deltas []core.StatsDelta) []any {
	project := make(textArray, len(deltas))
	bucket := make(int64Array, len(deltas))
	hook := make(textArray, len(deltas))
	counters := make([]int64Array, len(statsCols))
	flat := make(int64Array, len(statsCols)*len(deltas)) // one allocation for every counter array
	for i := range counters {
		counters[i] = flat[i*len(deltas) : (i+1)*len(deltas) : (i+1)*len(deltas)]
	}
	for i, d := range deltas {
		project[i], bucket[i], hook[i] = d.ProjectID, d.Bucket.UnixMicro(), d.WebhookID
		counters[0][i], counters[1][i], counters[2][i], counters[3][i] = d.Events, d.Succeeded, d.Retrying, d.Failed
		for j, n := range d.Latency {
			counters[4+j][i] = n
		}
	}
	args := make([]any, 0, 3+len(counters))
	args = append(args, project, bucket, hook)
	for _, c := range counters {
		args = append(args, c)
	}
	return args
}

// Stats implements core.StatsStore: a range scan of the rollup's primary
// key, summed into steps by the server.
func (s *Store) Stats(ctx context.Context, p core.StatsParams) ([]core.StatsRow, error) {
	step := p.Step
	if step <= 0 {
		step = core.StatsBucket
	}
	var sums []string
	for i, c := range statsCols {
		if p.NoLatency && i >= statsCounters {
			sums = append(sums, "0::bigint")
			continue
		}
		sums = append(sums, "sum("+c+")::bigint")
	}
	hook, all := core.StatsHook(p)
	hooks := []string{hook}
	if all || hook == core.StatsTotal {
		hooks = totalRows
	}
	rows, err := query(ctx, s, true, scanStatsRow,
		`SELECT bucket / $1 * $1 AS start, CASE WHEN $2 THEN webhook_id ELSE '' END AS hook, `+strings.Join(sums, ", ")+`
		 FROM stats WHERE project_id = $3
		   AND (CASE WHEN $2 THEN webhook_id <> ALL ($5::text[]) ELSE webhook_id = ANY ($5::text[]) END)
		   AND bucket >= $4 AND bucket < $6
		 GROUP BY 1, 2 ORDER BY 1, 2`,
		step.Microseconds(), all, p.ProjectID, p.Since.UnixMicro(), hooks, p.Until.UnixMicro())
	if err != nil {
		return nil, wrap("stats", err)
	}
	return rows, nil
}

func scanStatsRow(row pgx.Row) (core.StatsRow, error) {
	var r core.StatsRow
	var bucket int64
	dst := []any{&bucket, &r.WebhookID, &r.Events, &r.Succeeded, &r.Retrying, &r.Failed}
	for i := range r.Latency {
		dst = append(dst, &r.Latency[i])
	}
	if err := row.Scan(dst...); err != nil {
		return r, err
	}
	r.Start = time.UnixMicro(bucket).UTC()
	return r, nil
}
