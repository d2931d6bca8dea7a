package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// TakeRate implements core.RateStore. The single writer connection and
// BEGIN IMMEDIATE serialize it with every other write of the process.
func (s *Store) TakeRate(ctx context.Context, dest string, limit core.RateLimit, n int, now time.Time) (int, time.Time, time.Time, error) {
	var granted int
	var next time.Time
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var tat int64
		err := tx.QueryRowContext(ctx, `SELECT tat FROM rate_buckets WHERE dest = ?`, dest).Scan(&tat)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var newTAT time.Time
		granted, newTAT, next = limit.Take(fromMicros(tat), now, n)
		if granted == 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO rate_buckets (dest, tat) VALUES (?, ?)
			ON CONFLICT (dest) DO UPDATE SET tat = excluded.tat`, dest, micros(newTAT))
		return err
	})
	if err != nil {
		return 0, time.Time{}, time.Time{}, wrap("take rate", err)
	}
	return granted, next, now, nil
}
