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

// statsUpsertManySQL adds rows deltas to their rollup rows (distinct
// keys) in one statement.
func statsUpsertManySQL(rows int) string {
	return statsShapeSQL(statsAllCols, rows)
}

// statsShape is a set of the rollup's counter columns (bit i: statsCols[i]).
type statsShape uint32

// statsAllCols is the shape of every counter column.
const statsAllCols = statsShape(1)<<(statsCounters+core.LatencyBuckets) - 1

// statsShapeSQL adds rows deltas to their rollup rows (distinct keys) in
// one statement that binds and adds only the counter columns of shape:
// the others are 0 in every row (a new rollup row takes their default, 0).
func statsShapeSQL(shape statsShape, rows int) string {
	var cols, set []string
	for i, c := range statsCols {
		if shape&(1<<i) != 0 {
			cols = append(cols, c)
			set = append(set, c+" = "+c+" + excluded."+c)
		}
	}
	row := "(?, ?, ?" + strings.Repeat(", ?", len(cols)) + ")"
	return `INSERT INTO stats (project_id, bucket, webhook_id, ` + strings.Join(cols, ", ") +
		`) ` + valuesSQL(row, rows) +
		` ON CONFLICT (project_id, webhook_id, bucket) DO UPDATE SET ` + strings.Join(set, ", ")
}

// counters are d's counters in statsCols order.
func counters(d *core.StatsDelta) [statsCounters + core.LatencyBuckets]int64 {
	var c [statsCounters + core.LatencyBuckets]int64
	c[0], c[1], c[2], c[3] = d.Events, d.Succeeded, d.Retrying, d.Failed
	copy(c[statsCounters:], d.Latency[:])
	return c
}

// maxStatsShapes bounds the shapes whose statements a connection keeps
// (each prepared on first use, per power-of-two row count); past it a
// transaction's deltas of another shape take the statement of every
// column.
const maxStatsShapes = 32

// addStats writes rollup deltas inside a write transaction: a batch adds
// one row per project, bucket and webhook it touched (the deltas' keys
// are distinct), with one multi-row upsert per power of two in their
// number instead of one statement per row. The statements bind and add
// only the counters some delta of the batch holds (their shape): a fan-out
// completion's deltas hold successes and a few latency buckets, not 21
// counters, and the rollup's upserts were ~5 % of a fan-out delivery's
// instructions in the store (docs/design.md "Storage").
func addStats(tx *rawTx, deltas []core.StatsDelta) error {
	if len(deltas) == 0 {
		return nil
	}
	var shape statsShape
	for i := range deltas {
		for j, n := range counters(&deltas[i]) {
			if n != 0 {
				shape |= 1 << j
			}
		}
	}
	if shape == 0 {
		return nil // nothing to add
	}
	shape = tx.st.statsShapeOf(shape)
	rows := tx.st.statsBuf[:0]
	for i := range deltas {
		d := &deltas[i]
		rows = append(rows, d.ProjectID, d.Bucket.UnixMicro(), d.WebhookID)
		for j, n := range counters(d) {
			if shape&(1<<j) != 0 {
				rows = append(rows, n)
			}
		}
	}
	all := rows
	defer func() { clear(all); tx.st.statsBuf = all[:0] }()
	cols := len(rows) / len(deltas)
	left := len(deltas)
	for n := insertBatch; left > 0; {
		if left < n {
			n /= 2
			continue
		}
		st, err := tx.st.statsStmt(tx.ctx, shape, n)
		if err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		if _, err := tx.execShared(st, nil, rows[:n*cols], false); err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		rows, left = rows[n*cols:], left-n
	}
	return nil
}

// statsShapeOf is shape if the connection keeps (or may prepare) its
// statements, else the shape of every column (maxStatsShapes).
func (st *rawStmts) statsShapeOf(shape statsShape) statsShape {
	if _, ok := st.statsShapes[shape]; ok || len(st.statsShapes) < maxStatsShapes {
		return shape
	}
	return statsAllCols
}

// statsStmt is the shaped upsert (statsShapeSQL) of shape for n rows (a
// power of two up to insertBatch), prepared on first use.
func (st *rawStmts) statsStmt(ctx context.Context, shape statsShape, n int) (rawStmt, error) {
	if shape == statsAllCols {
		return st.sized[famStats][n], nil
	}
	if st.statsShapes == nil {
		st.statsShapes = map[statsShape]*[insertBatch + 1]rawStmt{}
	}
	sized := st.statsShapes[shape]
	if sized == nil {
		sized = &[insertBatch + 1]rawStmt{}
		st.statsShapes[shape] = sized
	}
	if sized[n] == nil {
		s, err := st.prepare(ctx, statsShapeSQL(shape, n))
		if err != nil {
			return nil, err
		}
		sized[n] = s
	}
	return sized[n], nil
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
