package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/longhook/longhook/internal/gateway/inbox"
	"github.com/longhook/longhook/internal/groupcommit"
	"github.com/longhook/longhook/internal/pgdb"
)

// pgWriter is the state of the writer goroutine (see Inbox).
type pgWriter struct {
	conn    *pgx.Conn  // nil while disconnected
	pid     int32      // backend of conn, which holds the lock ...
	started *time.Time // ... and its start, to recognise it later
	lastUse time.Time
	// resync is set by any failed attempt, whose transaction may have
	// committed unseen: the next attempt first re-reads the highest Seq.
	resync bool
	// A streak of transient failures: how many, since when, the last
	// error, and when the next attempt may run.
	fails        int
	failingSince time.Time
	lastErr      error
	nextTry      time.Time
}

// pgOp is one queued write: an accept (batched with the group's other
// accepts into one INSERT) or one statement.
type pgOp struct {
	accept *pgAccept
	sql    string
	args   []any
	tag    func(pgconn.CommandTag) // optional: the statement's result
}

func (op *pgOp) Size() int {
	if op.accept != nil {
		return inbox.AcceptSize(&op.accept.p)
	}
	return 64
}

func (op *pgOp) CreatedEvent() (inbox.Event, bool) {
	a := op.accept
	if a == nil || !a.created {
		return inbox.Event{}, false
	}
	return inbox.Event{Seq: a.res.Seq, Source: a.p.Source, WebhookID: a.p.WebhookID,
		Type: a.typ, Header: a.p.Header, Body: a.body, ReceivedAt: a.p.ReceivedAt}, true
}

type pgAccept struct {
	p                 inbox.AcceptParams
	id, headers, body []byte
	typ               string
	res               inbox.AcceptResult
	created           bool // inserted by the attempt that committed
}

// pgInsertEvents inserts a group's distinct events and returns, for each
// input row (by ordinality), its Seq and whether this statement inserted
// it. Existing rows are read from the statement's snapshot, which does
// not include the rows the INSERT adds.
const pgInsertEvents = `WITH input AS (
	SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[], $4::bytea[], $5::bytea[], $6::timestamptz[], $7::timestamptz[])
		WITH ORDINALITY AS t(source, webhook_id, type, headers, body, received_at, expire_at, ord)
), ins AS (
	INSERT INTO gateway_events (source, webhook_id, type, headers, body, received_at, expire_at)
	SELECT source, webhook_id, type, headers, body, received_at, expire_at FROM input ORDER BY ord
	ON CONFLICT (source, webhook_id) DO NOTHING
	RETURNING seq, source, webhook_id
)
SELECT i.ord, coalesce(ins.seq, e.seq), ins.seq IS NOT NULL
FROM input i
LEFT JOIN ins ON ins.source = i.source AND ins.webhook_id = i.webhook_id
LEFT JOIN gateway_events e ON e.source = i.source AND e.webhook_id = i.webhook_id`

// newWriter returns the inbox's writer. Its goroutine lives from Open to
// Close: between groups it reconnects a lost session (at the backoff
// pace) and checks an idle one, so the lock is held again before the next
// write needs it. A group that fails for a reason other than the
// database's state is split, so one bad operation cannot fail its
// neighbours; a transient failure is retried whole (do).
func (s *Inbox) newWriter() *groupcommit.Writer[*pgOp] {
	return inbox.NewWriter(groupcommit.Config[*pgOp]{
		Commit: func(g []*pgOp) error {
			return s.do(func(ctx context.Context, c *pgx.Conn) error { return s.apply(ctx, c, g, s.floor) })
		},
		Split: func(err error) bool { return !pgdb.Transient(err) },
		Begin: func(g []*pgOp) {
			s.nCommits.Add(1)
			s.nOps.Add(int64(len(g)))
			// Events above floor that the INSERT finds already stored were
			// stored by an earlier attempt of this group whose answer was
			// lost: they are not duplicates.
			s.floor = s.tail.Load().LastSeq()
		},
		Done: s.committed,
		Idle: s.upkeep,
	})
}

// upkeep reconnects a lost session once its backoff has passed, and pings
// one idle for pgIdlePing; it returns when it wants to run again.
func (s *Inbox) upkeep() time.Duration {
	w := &s.w
	due := func() time.Time {
		if w.conn == nil || w.resync {
			return w.nextTry
		}
		return w.lastUse.Add(pgIdlePing)
	}
	if !time.Now().Before(due()) {
		_, _ = s.attempt(func(ctx context.Context, c *pgx.Conn) error { return c.Ping(ctx) })
	}
	return max(time.Until(due()), time.Millisecond)
}

// committed publishes a settled group's new events to the tail and wakes
// forwarders and streams, before the callers return, so an accept that
// returned has always signalled Changed.
func (s *Inbox) committed(group []*pgOp, errs []error) {
	created := inbox.CreatedEvents(group, errs)
	s.tail.Load().Add(created)
	if len(created) > 0 {
		s.changed.Signal()
	}
}

// apply sends the group as one batch, which PostgreSQL runs as one
// implicit transaction, committed when the batch's results have all come
// back; results are kept only then.
func (s *Inbox) apply(ctx context.Context, c *pgx.Conn, group []*pgOp, floor int64) error {
	b := &pgx.Batch{}
	type key struct{ source, id string }
	first := map[key]int{} // index into uniq
	var uniq []*pgAccept
	var seqs []int64
	var inserted []bool
	for _, op := range group {
		if a := op.accept; a != nil {
			k := key{a.p.Source, a.p.WebhookID}
			if _, ok := first[k]; !ok {
				first[k] = len(uniq)
				uniq = append(uniq, a)
			}
		}
	}
	if len(uniq) > 0 {
		n := len(uniq)
		src, typ := make([]string, n), make([]string, n)
		ids, hdr, body := make([][]byte, n), make([][]byte, n), make([][]byte, n)
		recv, exp := make([]time.Time, n), make([]time.Time, n)
		for i, a := range uniq {
			src[i], ids[i], typ[i], hdr[i], body[i], recv[i], exp[i] = a.p.Source, a.id, a.typ, a.headers, a.body, a.p.ReceivedAt, a.p.ExpireAt
		}
		seqs, inserted = make([]int64, n), make([]bool, n)
		b.Queue(pgInsertEvents, src, ids, typ, hdr, body, recv, exp).Query(func(rows pgx.Rows) error {
			var ord int
			var seq *int64
			var ins bool
			_, err := pgx.ForEachRow(rows, []any{&ord, &seq, &ins}, func() error {
				if seq == nil || ord < 1 || ord > n {
					// Only another writer's uncommitted row can do this.
					return errors.New("dedupe conflict with a row this transaction cannot see: is another process writing the inbox?")
				}
				seqs[ord-1], inserted[ord-1] = *seq, ins
				return nil
			})
			return err
		})
	}
	for _, op := range group {
		if op.accept != nil {
			continue
		}
		q := b.Queue(op.sql, op.args...)
		if op.tag != nil {
			q.Exec(func(t pgconn.CommandTag) error {
				op.tag(t)
				return nil
			})
		}
	}
	if err := c.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if hook := s.afterBatch.Load(); hook != nil {
		if err := (*hook)(c); err != nil {
			return err
		}
	}
	seen := make([]bool, len(uniq))
	for _, op := range group {
		a := op.accept
		if a == nil {
			continue
		}
		i := first[key{a.p.Source, a.p.WebhookID}]
		a.res.Seq = seqs[i]
		a.created = inserted[i] && !seen[i]
		a.res.Duplicate = seen[i] || (!inserted[i] && seqs[i] <= floor)
		seen[i] = true
	}
	return nil
}

// do runs fn through attempt, retrying transient failures at the backoff
// pace until pgRetryBudget after the current streak of failures began.
func (s *Inbox) do(fn func(ctx context.Context, c *pgx.Conn) error) error {
	deadline := time.Now().Add(pgRetryBudget)
	if !s.w.failingSince.IsZero() {
		deadline = s.w.failingSince.Add(pgRetryBudget)
	}
	for {
		err, retry := s.attempt(fn)
		if err == nil || !retry {
			return err
		}
		wait := max(time.Until(s.w.nextTry), 0)
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("database unavailable: %w", err)
		}
		t := time.NewTimer(wait)
		<-t.C
	}
}

// attempt runs fn once on the writer's connection, connecting (and
// taking the lock) and resynchronising the tail first if needed. While a
// streak of failures lasts it does nothing before w.nextTry and returns
// the last error. retry reports whether the failure is transient.
func (s *Inbox) attempt(fn func(ctx context.Context, c *pgx.Conn) error) (err error, retry bool) {
	w := &s.w
	if w.fails > 0 && time.Now().Before(w.nextTry) {
		return w.lastErr, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.stmtTimeout+s.wcfg.ConnectTimeout)
	defer cancel()
	err = s.prepare(ctx)
	stmtErr := false // an error of fn's statements, not of getting ready
	if err == nil {
		err = fn(ctx, w.conn)
		stmtErr = err != nil
	}
	w.lastUse = time.Now()
	if err == nil {
		if w.fails > 0 {
			s.log.Info("gateway.inbox.recovered", slog.Duration("after", time.Since(w.failingSince)), slog.Int("attempts", w.fails))
		}
		w.fails, w.failingSince, w.lastErr = 0, time.Time{}, nil
		s.down.Store(nil)
		return nil, false
	}
	w.resync = true
	lost := w.conn == nil || w.conn.IsClosed()
	if lost && w.conn != nil {
		pgdb.CloseConn(w.conn)
		w.conn = nil
	}
	if stmtErr && !lost && !pgdb.Transient(err) {
		// The statements' own error: the batch rolled back (or, if the
		// error is ours in reading its results, committed: the resync
		// covers that).
		return err, false
	}
	// Anything else, even an error that will not go away by itself (say,
	// the tables were dropped), stops all writes: back off, so neither
	// the callers nor run's reconnect timer spin.
	if w.fails == 0 {
		w.failingSince = time.Now()
	}
	w.fails++
	w.lastErr = err
	w.nextTry = time.Now().Add(pgBackoff(w.fails))
	s.down.Store(&err)
	level := slog.LevelWarn
	if errors.Is(err, ErrInboxLocked) {
		level = slog.LevelError
	}
	s.log.LogAttrs(ctx, level, "gateway.inbox.retry", slog.Int("attempt", w.fails), slog.Any("error", err))
	return err, true
}

// prepare makes sure the writer has a connection holding the lock and,
// after a failure, re-reads the highest Seq: events committed by a batch
// whose answer was lost are missing from the tail, so it is restarted
// above them and readers below read them from the table.
func (s *Inbox) prepare(ctx context.Context) error {
	w := &s.w
	if w.conn == nil {
		s.nDials.Add(1)
		c, err := pgx.ConnectConfig(ctx, s.wcfg)
		if err != nil {
			return &pgdb.LostError{Err: err}
		}
		if err := s.lock(ctx, c, true); err != nil {
			pgdb.CloseConn(c)
			// Transient too when the lock is held elsewhere: keep trying
			// at the backoff pace, failing writes meanwhile.
			return &pgdb.LostError{Err: err}
		}
		w.conn = c
		s.log.Info("gateway.inbox.connected", slog.Int("pid", int(w.pid)))
	}
	if w.resync {
		var last int64
		if err := w.conn.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM gateway_events`).Scan(&last); err != nil {
			return err
		}
		if known := s.tail.Load().LastSeq(); last < known {
			// The database lost commits this process saw (a failover to a
			// replica that lagged): never hand out a Seq that readers may
			// already have passed.
			s.log.Error("gateway.inbox.lost_commits", slog.Int64("last_seq", last), slog.Int64("known_seq", known))
			if _, err := w.conn.Exec(ctx, `SELECT setval(pg_get_serial_sequence('gateway_events', 'seq'), $1)`, known); err != nil {
				return err
			}
		} else if last > known {
			s.tail.Store(inbox.NewTail(last, inbox.TailEvents, inbox.TailBytes))
			s.changed.Signal()
		}
		w.resync = false
	}
	return nil
}
