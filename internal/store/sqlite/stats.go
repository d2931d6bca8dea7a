package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
)

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

// statsUpsertSQL adds one delta to its rollup row.
var statsUpsertSQL = statsUpsertManySQL(1)

// statsArgCols is the number of parameters per row of
// statsUpsertManySQL: the key and the counters.
var statsArgCols = 3 + len(statsCols)

// statsUpsertManySQL adds rows deltas to their rollup rows (distinct
// keys) in one statement.
func statsUpsertManySQL(rows int) string {
	var set []string
	for _, c := range statsCols {
		set = append(set, c+" = "+c+" + excluded."+c)
	}
	row := "(?" + strings.Repeat(", ?", statsArgCols-1) + ")"
	return `INSERT INTO stats (project_id, bucket, webhook_id, ` + strings.Join(statsCols, ", ") +
		`) ` + valuesSQL(row, rows) +
		` ON CONFLICT (project_id, webhook_id, bucket) DO UPDATE SET ` + strings.Join(set, ", ")
}

// statsArgs are the upsert's arguments for d.
func statsArgs(d core.StatsDelta) []any {
	args := []any{d.ProjectID, d.Bucket.UnixMicro(), d.WebhookID, d.Events, d.Succeeded, d.Retrying, d.Failed}
	for _, n := range d.Latency {
		args = append(args, n)
	}
	return args
}

// addStats writes rollup deltas inside a write transaction: a batch adds
// one row per project, bucket and webhook it touched (the deltas' keys
// are distinct), with one multi-row upsert per power of two in their
// number instead of one statement per row.
func addStats(tx *rawTx, deltas []core.StatsDelta) error {
	if len(deltas) == 1 {
		if err := tx.exec(tx.st.upsertStats, statsArgs(deltas[0])...); err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		return nil
	}
	ins := newRowInserter(tx, "stats", statsArgCols, famStats)
	for _, d := range deltas {
		if err := ins.add(statsArgs(d)...); err != nil {
			return err
		}
	}
	return ins.flush()
}

// Stats implements core.StatsStore: a range scan of the rollup's primary
// key (project, webhook, bucket), summed into steps by SQLite: a day of the
// project's totals is 288 rows in.
func (s *Store) Stats(ctx context.Context, p core.StatsParams) ([]core.StatsRow, error) {
	step := p.Step
	if step <= 0 {
		step = core.StatsBucket
	}
	var sums []string
	for i, c := range statsCols {
		if p.NoLatency && i >= statsCounters {
			sums = append(sums, "0")
			continue
		}
		sums = append(sums, "sum("+c+")")
	}
	hook, all := core.StatsHook(p)
	cond := `webhook_id = ?5`
	if all {
		cond = `webhook_id != '` + core.StatsTotal + `'`
	}
	q := `SELECT bucket / ?1 * ?1 AS start, CASE WHEN ?2 THEN webhook_id ELSE '' END AS hook, ` + strings.Join(sums, ", ") +
		` FROM stats WHERE project_id = ?3 AND ` + cond + ` AND bucket >= ?4 AND bucket < ?6`
	args := []any{step.Microseconds(), all, p.ProjectID, p.Since.UnixMicro(), hook, p.Until.UnixMicro()}
	rows, err := s.r.QueryContext(ctx, q+` GROUP BY start, hook ORDER BY start, hook`, args...)
	if err != nil {
		return nil, wrap("stats", err)
	}
	defer rows.Close()
	var out []core.StatsRow
	for rows.Next() {
		var r core.StatsRow
		var start int64
		dst := []any{&start, &r.WebhookID, &r.Events, &r.Succeeded, &r.Retrying, &r.Failed}
		for i := range r.Latency {
			dst = append(dst, &r.Latency[i])
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, wrap("stats", err)
		}
		r.Start = time.UnixMicro(start).UTC()
		out = append(out, r)
	}
	return out, wrap("stats", rows.Err())
}
