package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// settleSQL takes groups out of deferred_deliveries, locking them in id
// order (the order every completion locks its groups in: no deadlock).
const settleSQL = `DELETE FROM deferred_deliveries WHERE id IN (
	SELECT id FROM deferred_deliveries WHERE %s ORDER BY id FOR UPDATE)
RETURNING id, lease_base, data`

// materializeSQL inserts settled deliveries as the publish would have
// (insertDeliveriesSQL, the database's clock being the group's
// lease_base: $21, where $22), skipping rows a completion already wrote and
// deliveries of events the publish did not insert (an idempotency key
// seen before).
const materializeSQL = `INSERT INTO deliveries (` + deliveryColumns + `)
SELECT d.id, d.event_id, d.project_id, d.webhook_id, d.uri, d.dest, d.event_type, d.status, d.queue,
	d.attempts,
	CASE WHEN d.based AND d.lease_owner <> '' THEN d.base + (d.next_attempt_time - d.create_time)
		ELSE d.next_attempt_time END,
	d.manual, d.last_status_code, d.last_error, d.schedule_start, d.create_time, d.update_time,
	d.lease_owner, CASE WHEN d.based AND d.lease_owner <> '' THEN d.base ELSE d.lease_time END,
	d.schedule_base
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
	$7::text[], $8::text[], $9::int2[], $10::int4[], $11::timestamptz[], $12::bool[], $13::int4[],
	$14::text[], $15::timestamptz[], $16::timestamptz[], $17::timestamptz[], $18::text[], $19::timestamptz[],
	$20::int4[], $21::timestamptz[], $22::bool[])
	AS d(id, event_id, project_id, webhook_id, uri, dest, event_type, status, queue, attempts,
		next_attempt_time, manual, last_status_code, last_error, schedule_start, create_time, update_time,
		lease_owner, lease_time, schedule_base, base, based)
WHERE EXISTS (SELECT 1 FROM events e WHERE e.id = d.event_id)
ON CONFLICT (id) DO NOTHING`

// settle materializes the groups matching where (args its parameters)
// in one transaction and forgets the ones this store held. It returns
// how many groups it took.
func (s *Store) settle(ctx context.Context, where string, args ...any) (int, error) {
	var taken []string
	err := s.inTx(ctx, true, func(tx pgx.Tx) error {
		taken = taken[:0]
		rows, err := tx.Query(ctx, fmt.Sprintf(settleSQL, where), args...)
		if err != nil {
			return err
		}
		var dr deliveryRows
		var bases timeArray
		var based boolArray
		for rows.Next() {
			var id string
			var base *time.Time
			var data []byte
			if err := rows.Scan(&id, &base, &data); err != nil {
				rows.Close()
				return err
			}
			ds, err := decodeDeferred(data)
			if err != nil {
				rows.Close()
				return fmt.Errorf("group %s: %w", id, err)
			}
			taken = append(taken, id)
			for _, d := range ds {
				dr.add(d)
				if base != nil {
					bases, based = append(bases, *base), append(based, true)
				} else {
					bases, based = append(bases, time.Time{}), append(based, false)
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(dr.id) == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, materializeSQL, dr.id, dr.event, dr.project, dr.webhook, dr.uri, dr.dest, dr.typ,
			dr.status, dr.queue, dr.attempts, dr.next, dr.manual, dr.lastCode, dr.lastError, dr.start, dr.created,
			dr.updated, dr.leaseOwner, dr.leaseTime, dr.scheduleBase, bases, based)
		return err
	})
	if err != nil {
		return 0, wrap("settle deferred deliveries", err)
	}
	if len(taken) > 0 {
		s.deferred.drop(taken)
	}
	return len(taken), nil
}

// settleAll is the readers' barrier: every store's groups become rows.
func (s *Store) settleAll(ctx context.Context) error {
	_, err := s.settle(ctx, `true`)
	return err
}

// settleGroups materializes the named groups (this store's) and forgets
// them, whether this call or another store took them.
func (s *Store) settleGroups(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	if _, err := s.settle(ctx, `id = ANY ($1::text[])`, textArray(ids)); err != nil {
		return err
	}
	s.deferred.drop(ids)
	return nil
}

// settleExpired materializes every store's groups whose earliest lease
// expired by now (nil: the database's clock): their publisher did not
// complete them in time, presumably dead, and the deliveries are claimed
// as their leases expire, as before.
func (s *Store) settleExpired(ctx context.Context, now *time.Time) error {
	_, err := s.settle(ctx, `expires <= coalesce($1::timestamptz, now())`, now)
	return err
}

// settleStale materializes this store's groups older than settleAge or
// whose earliest lease expired by now (the callers' clock; zero: this
// process's).
func (s *Store) settleStale(ctx context.Context, now time.Time) error {
	local := time.Now()
	switch {
	case !s.callerClock:
		now = local
	case now.IsZero(): // no caller's time to compare expiries with
		now = time.Time{}
	}
	return s.settleGroups(ctx, s.deferred.stale(local.Add(-settleAge), now))
}

// settleLoop materializes stale and expired groups every settleEvery.
func (s *Store) settleLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(settleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, f := range []func(context.Context) error{
			s.reap,
			func(ctx context.Context) error { return s.settleStale(ctx, time.Time{}) },
			func(ctx context.Context) error { return s.settleExpired(ctx, nil) },
		} {
			if err := f(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("postgres.settle_deferred", slog.String("error", err.Error()))
			}
		}
	}
}

// reapSQL deletes done groups, locked in id order (as settleSQL).
const reapSQL = `DELETE FROM deferred_deliveries WHERE id IN (
	SELECT id FROM deferred_deliveries WHERE id = ANY ($1::text[]) ORDER BY id FOR UPDATE)`

// reap deletes the done groups no completion took with it.
func (s *Store) reap(ctx context.Context) error {
	done := s.deferred.takeDone()
	if len(done) == 0 {
		return nil
	}
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		b := &pgx.Batch{}
		b.Queue(asyncCommitSQL) // a lost delete leaves a record whose rows all exist
		b.Queue(reapSQL, textArray(done))
		return c.SendBatch(ctx, b).Close()
	})
	if err != nil {
		s.deferred.finished(nil, nil, done, false)
		return wrap("delete deferred groups", err)
	}
	return nil
}
