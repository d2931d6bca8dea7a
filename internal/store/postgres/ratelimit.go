package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
)

// takeRateSQL creates or locks dest's bucket and returns its tat with the
// time to apply the limit at ($2, or the database's clock, which every
// instance shares).
const takeRateSQL = `INSERT INTO rate_buckets AS b (dest, tat) VALUES ($1, to_timestamp(0))
ON CONFLICT (dest) DO UPDATE SET tat = b.tat
RETURNING b.tat, coalesce($2::timestamptz, clock_timestamp())`

// TakeRate implements core.RateStore: the bucket row is locked by the
// upsert, the GCRA step runs here, and the new tat is written in the same
// transaction, so instances taking tokens for one destination queue on
// its row and never hand out more than the limit between them. Retrying a
// transaction whose commit was lost can only waste tokens (send less),
// never add any.
func (s *Store) TakeRate(ctx context.Context, dest string, limit core.RateLimit, n int, now time.Time) (int, time.Time, time.Time, error) {
	var granted int
	var next, applied time.Time
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			var tat, at time.Time
			if err := tx.QueryRow(ctx, takeRateSQL, dest, s.leaseNow(now)).Scan(&tat, &at); err != nil {
				return err
			}
			var newTAT time.Time
			granted, newTAT, next = limit.Take(tat, at, n)
			applied = at
			if granted == 0 {
				return nil
			}
			_, err := tx.Exec(ctx, `UPDATE rate_buckets SET tat = $2 WHERE dest = $1`, dest, newTAT)
			return err
		})
	})
	if err != nil {
		return 0, time.Time{}, time.Time{}, wrap("take rate", err)
	}
	return granted, next, applied, nil
}
