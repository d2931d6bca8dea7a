package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// statsCols are the rollup's counter columns, in core.StatsCounts order.
var statsCols = func() []string {
	cols := []string{"events", "succeeded", "retrying", "failed"}
	for i := range core.LatencyBuckets {
		cols = append(cols, fmt.Sprintf("lat%d", i))
	}
	return cols
}()

// statsUpsertSQL adds one delta to its rollup row.
var statsUpsertSQL = func() string {
	var set []string
	for _, c := range statsCols {
		set = append(set, c+" = "+c+" + excluded."+c)
	}
	return `INSERT INTO stats (project_id, bucket, webhook_id, ` + strings.Join(statsCols, ", ") +
		`) VALUES (?, ?, ?` + strings.Repeat(", ?", len(statsCols)) +
		`) ON CONFLICT (project_id, bucket, webhook_id) DO UPDATE SET ` + strings.Join(set, ", ")
}()

// statsArgs are the upsert's arguments for d.
func statsArgs(d core.StatsDelta) []any {
	args := []any{d.ProjectID, d.Bucket.UnixMicro(), d.WebhookID, d.Events, d.Succeeded, d.Retrying, d.Failed}
	for _, n := range d.Latency {
		args = append(args, n)
	}
	return args
}

// addStats writes rollup deltas inside a write transaction: a batch adds
// one row per project, bucket and webhook it touched, so the rollup costs
// the hot path one statement per batch in the common case.
func (s *Store) addStats(ctx context.Context, tx *sql.Tx, deltas []core.StatsDelta) error {
	if len(deltas) == 0 {
		return nil
	}
	st := tx.StmtContext(ctx, s.st.upsertStats)
	for _, d := range deltas {
		if _, err := st.ExecContext(ctx, statsArgs(d)...); err != nil {
			return fmt.Errorf("stats: %w", err)
		}
	}
	return nil
}

// Stats implements core.StatsStore: a range scan of the rollup's primary
// key per project, folded into steps in Go.
func (s *Store) Stats(ctx context.Context, p core.StatsParams) ([]core.StatsRow, error) {
	q := `SELECT bucket, webhook_id, ` + strings.Join(statsCols, ", ") + ` FROM stats WHERE bucket >= ? AND bucket < ?`
	args := []any{p.Since.UnixMicro(), p.Until.UnixMicro()}
	if p.ProjectID != "" {
		q += ` AND project_id = ?`
		args = append(args, p.ProjectID)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY bucket`, args...)
	if err != nil {
		return nil, wrap("stats", err)
	}
	defer rows.Close()
	var out []core.StatsRow
	for rows.Next() {
		var r core.StatsRow
		var bucket int64
		dst := []any{&bucket, &r.WebhookID, &r.Events, &r.Succeeded, &r.Retrying, &r.Failed}
		for i := range r.Latency {
			dst = append(dst, &r.Latency[i])
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, wrap("stats", err)
		}
		r.Start = time.UnixMicro(bucket).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("stats", err)
	}
	return core.FoldStatsRows(out, p), nil
}
