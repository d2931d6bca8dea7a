package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/longhook/longhook/internal/gateway/inbox"
	"github.com/longhook/longhook/internal/groupcommit"
)

// schemaVersion is stored in PRAGMA user_version; a file written by a
// newer gateway is refused rather than misread.
const schemaVersion = 1

const schemaV1 = `
CREATE TABLE events (
	-- Log position. Not AUTOINCREMENT (which costs an extra row update per
	-- insert): the sweep never deletes the newest event, so max(seq) never
	-- goes down and a position is never reused.
	seq         INTEGER PRIMARY KEY,
	source      TEXT    NOT NULL,
	webhook_id  TEXT    NOT NULL,
	type        TEXT    NOT NULL,
	headers     TEXT    NOT NULL,  -- "Name: value\r\n" lines
	body        BLOB    NOT NULL,
	received_at INTEGER NOT NULL,  -- Unix microseconds
	expire_at   INTEGER NOT NULL,  -- end of the dedupe horizon, Unix microseconds
	UNIQUE (source, webhook_id)
);
CREATE INDEX events_expire ON events (source, expire_at);
CREATE TABLE cursors (
	sink TEXT PRIMARY KEY,
	seq  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE retries (
	seq        INTEGER NOT NULL,
	sink       TEXT    NOT NULL,
	attempts   INTEGER NOT NULL,
	next_at    INTEGER NOT NULL,  -- Unix microseconds; MaxInt64 when dead
	last_error TEXT    NOT NULL,
	dead       INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (seq, sink)
) WITHOUT ROWID;
CREATE INDEX retries_due ON retries (sink, next_at, seq);
`

const (
	// maxYields bounds how often the writer lets other goroutines run to
	// gather more operations before committing: a few yields grow groups
	// (fewer, cheaper commits) at a cost of microseconds of latency.
	maxYields = 4
	// lingerSleep is the pause of a loaded writer whose group is still
	// smaller than twice the previous one.
	lingerSleep = 100 * time.Microsecond
	// checkpointPages is the WAL size, in pages, at which the background
	// checkpointer copies the WAL into the database file.
	checkpointPages = 1000
)

// Inbox is the embedded inbox.Inbox: one SQLite file in WAL mode, one
// writer connection owned by a single goroutine, and a pool of read-only
// connections.
//
// # Group commit
//
// Every write (accepting an event, moving a cursor, recording a retry,
// sweeping) is an operation sent to the writer (internal/groupcommit). Its
// goroutine takes whatever has queued up while the previous transaction
// committed, up to inbox.MaxGroup operations or inbox.MaxGroupBytes, runs them in one
// transaction, commits, and only then releases their callers. Concurrent
// HTTP requests therefore share commits, and a request still answers 2xx
// only after the transaction holding its row has committed. If a group
// fails, it is split in halves and each committed again, so one bad
// operation cannot fail its neighbours.
type Inbox struct {
	w   *sql.Conn // the writer's only connection, used by run alone
	wdb *sql.DB
	r   *sql.DB
	st  sqliteStmts
	q   *groupcommit.Writer[*writeOp]

	changed *inbox.ChangeSignal
	tail    *inbox.Tail
	ckpt    chan struct{} // nudges the checkpointer; closed by Close
	ckDone  chan struct{} // closed when the checkpointer has returned
	ckDB    *sql.DB
	pages   atomic.Int64 // WAL frames written since the last checkpoint (approximate)

	nCommits, nOps atomic.Int64 // group-commit statistics

	closeOnce sync.Once
	closeErr  error
}

var _ inbox.Inbox = (*Inbox)(nil)

type sqliteStmts struct {
	begin, commit                                                                   *sql.Stmt
	insertEvent, findEvent, setCursor, insertRetry, updateRetry, deleteRetry, sweep *sql.Stmt
	after, dueRetries, cursor                                                       *sql.Stmt
}

// A writeOp is one queued write: an accept (batched with the group's
// other accepts into multi-row INSERTs) or any other statement run by fn.
type writeOp struct {
	accept *acceptOp
	fn     func(ctx context.Context) error
}

func (op *writeOp) Size() int {
	if op.accept != nil {
		return inbox.AcceptSize(&op.accept.p)
	}
	return 64
}

func (op *writeOp) CreatedEvent() (inbox.Event, bool) {
	a := op.accept
	if a == nil || !a.created {
		return inbox.Event{}, false
	}
	return inbox.Event{Seq: a.res.Seq, Source: a.p.Source, WebhookID: a.p.WebhookID,
		Type: a.p.Type, Header: a.p.Header, Body: a.p.Body, ReceivedAt: a.p.ReceivedAt}, true
}

type acceptOp struct {
	p       inbox.AcceptParams
	headers string
	res     inbox.AcceptResult
	created bool
}

// Open opens (creating if needed) the inbox file at path.
// synchronous is the SQLite pragma: "NORMAL" (survives kill -9) or
// "FULL" (also survives power loss).
func Open(ctx context.Context, path, synchronous string) (*Inbox, error) {
	switch synchronous = strings.ToUpper(synchronous); synchronous {
	case "":
		synchronous = "NORMAL"
	case "NORMAL", "FULL", "EXTRA":
	default:
		return nil, fmt.Errorf("gateway: sqlite: synchronous must be NORMAL, FULL or EXTRA, not %q", synchronous)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("gateway: sqlite: %w", err)
	}
	// Created 0600 before SQLite creates it 0644 (its -wal and -shm
	// files take the database file's mode); an existing file keeps its mode.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		_ = f.Close()
	} else if !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("gateway: sqlite: %w", err)
	}
	base := "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=busy_timeout(10000)"
	// The writer's page cache is 16 MiB: it reads back only the right
	// edges of the b-trees and the dedupe index, never the event pages it
	// appended, and every page a larger cache adds costs an allocation in
	// the pure-Go SQLite (with 64 MiB, ~3 µs more per event until it was
	// full).
	wdb, err := sql.Open("sqlite", base+"&_pragma=journal_mode(WAL)&_pragma=synchronous("+synchronous+")"+
		"&_pragma=cache_size(-16384)&_pragma=journal_size_limit(67108864)&_pragma=temp_store(MEMORY)"+
		"&_pragma=wal_autocheckpoint(0)") // checkpoints run off the writer, see checkpointer
	if err != nil {
		return nil, fmt.Errorf("gateway: sqlite: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	s := &Inbox{wdb: wdb, ckpt: make(chan struct{}, 1), ckDone: make(chan struct{}), changed: inbox.NewChangeSignal()}
	if err := s.open(ctx, base); err != nil {
		_ = s.closeDBs()
		return nil, err
	}
	s.q = s.newWriter()
	go s.checkpointer()
	return s, nil
}

func (s *Inbox) open(ctx context.Context, base string) error {
	var err error
	if s.w, err = s.wdb.Conn(ctx); err != nil {
		return fmt.Errorf("gateway: sqlite: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	var last sql.NullInt64
	if err := s.w.QueryRowContext(ctx, `SELECT max(seq) FROM events`).Scan(&last); err != nil {
		return fmt.Errorf("gateway: sqlite: %w", err)
	}
	s.tail = inbox.NewTail(last.Int64, inbox.TailEvents, inbox.TailBytes)
	s.r, err = sql.Open("sqlite", base+"&_pragma=query_only(1)&_pragma=cache_size(-16384)")
	if err != nil {
		return fmt.Errorf("gateway: sqlite: %w", err)
	}
	s.r.SetMaxOpenConns(4)
	s.r.SetMaxIdleConns(4)
	if s.ckDB, err = sql.Open("sqlite", base); err != nil {
		return fmt.Errorf("gateway: sqlite: %w", err)
	}
	s.ckDB.SetMaxOpenConns(1)
	prep := func(db interface {
		PrepareContext(context.Context, string) (*sql.Stmt, error)
	}, q string, dst **sql.Stmt) {
		if err == nil {
			*dst, err = db.PrepareContext(ctx, q)
		}
	}
	prep(s.w, `BEGIN IMMEDIATE`, &s.st.begin)
	prep(s.w, `COMMIT`, &s.st.commit)
	prep(s.w, `INSERT INTO events (source, webhook_id, type, headers, body, received_at, expire_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, webhook_id) DO NOTHING`, &s.st.insertEvent)
	prep(s.w, `SELECT seq FROM events WHERE source = ? AND webhook_id = ?`, &s.st.findEvent)
	prep(s.w, `INSERT INTO cursors (sink, seq) VALUES (?, ?) ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq`, &s.st.setCursor)
	prep(s.w, `INSERT INTO retries (seq, sink, attempts, next_at, last_error, dead) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (seq, sink) DO UPDATE SET attempts = excluded.attempts, next_at = excluded.next_at,
		last_error = excluded.last_error, dead = excluded.dead`, &s.st.insertRetry)
	prep(s.w, `UPDATE retries SET attempts = ?, next_at = ?, last_error = ?, dead = ? WHERE seq = ? AND sink = ?`, &s.st.updateRetry)
	prep(s.w, `DELETE FROM retries WHERE seq = ? AND sink = ?`, &s.st.deleteRetry)
	prep(s.w, `DELETE FROM events WHERE seq IN (SELECT e.seq FROM events e
		WHERE e.source = ? AND e.expire_at < ? AND e.seq <= ?
		AND e.seq < (SELECT max(seq) FROM events)
		AND NOT EXISTS (SELECT 1 FROM retries r WHERE r.seq = e.seq) LIMIT ?)`, &s.st.sweep)
	prep(s.r, `SELECT seq, source, webhook_id, type, headers, body, received_at FROM events
		WHERE seq > ? AND seq <= ? AND +source = ? ORDER BY seq LIMIT ?`, &s.st.after) // +source: scan by seq, not by an index on source
	prep(s.r, `SELECT r.seq, r.attempts, e.source, e.webhook_id, e.type, e.headers, e.body, e.received_at
		FROM retries r JOIN events e ON e.seq = r.seq
		WHERE r.sink = ? AND r.next_at <= ? ORDER BY r.next_at, r.seq`, &s.st.dueRetries)
	prep(s.r, `SELECT seq FROM cursors WHERE sink = ?`, &s.st.cursor)
	if err != nil {
		return fmt.Errorf("gateway: sqlite: prepare: %w", err)
	}
	return nil
}

func (s *Inbox) migrate(ctx context.Context) error {
	var v int
	if err := s.w.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return fmt.Errorf("gateway: sqlite: migrate: %w", err)
	}
	switch {
	case v == schemaVersion:
		return nil
	case v > schemaVersion:
		return fmt.Errorf("gateway: sqlite: schema version %d is newer than this gateway's %d", v, schemaVersion)
	}
	err := s.exec(ctx, func(ctx context.Context) error {
		if _, err := s.w.ExecContext(ctx, schemaV1); err != nil {
			return err
		}
		_, err := s.w.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion))
		return err
	})
	if err != nil {
		return fmt.Errorf("gateway: sqlite: migrate: %w", err)
	}
	return nil
}

// exec runs fn in one IMMEDIATE transaction on the writer connection.
// BEGIN and COMMIT are prepared once (after migration), which saves
// parsing them on every group.
func (s *Inbox) exec(ctx context.Context, fn func(ctx context.Context) error) error {
	begin := func() error { _, err := s.w.ExecContext(ctx, `BEGIN IMMEDIATE`); return err }
	commit := func() error { _, err := s.w.ExecContext(ctx, `COMMIT`); return err }
	if s.st.begin != nil {
		begin = func() error { _, err := s.st.begin.ExecContext(ctx); return err }
		commit = func() error { _, err := s.st.commit.ExecContext(ctx); return err }
	}
	if err := begin(); err != nil {
		return err
	}
	if err := fn(ctx); err != nil {
		_, _ = s.w.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
		return err
	}
	if err := commit(); err != nil {
		_, _ = s.w.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
		return err
	}
	return nil
}

// newWriter returns the inbox's writer (see Inbox).
func (s *Inbox) newWriter() *groupcommit.Writer[*writeOp] {
	ctx := context.Background()
	return inbox.NewWriter(groupcommit.Config[*writeOp]{
		Commit: func(g []*writeOp) error {
			return s.exec(ctx, func(ctx context.Context) error { return s.apply(ctx, g) })
		},
		Begin: func(g []*writeOp) {
			s.nCommits.Add(1)
			s.nOps.Add(int64(len(g)))
		},
		Done:   s.committed,
		Yields: maxYields,
		// Under load, pause once (parked, not spinning) until the group
		// is twice the previous one: fewer, fuller commits cost less CPU
		// per event.
		Linger: func(queued, last int) (int, time.Duration) {
			if last > 1 {
				return 2 * last, lingerSleep
			}
			return 0, 0
		},
	})
}

// committed publishes a settled group's new events to the tail and to
// Changed; it runs before the group's callers return, so an accept that
// returned has always signalled Changed.
func (s *Inbox) committed(group []*writeOp, errs []error) {
	created := inbox.CreatedEvents(group, errs)
	s.tail.Add(created)
	if len(created) > 0 {
		s.changed.Signal()
	}
	// A rough page count: a few pages per commit plus one per event.
	if s.pages.Add(int64(3+len(created))) >= checkpointPages {
		select {
		case s.ckpt <- struct{}{}:
		default:
		}
	}
}

// apply runs a group's operations inside the open transaction.
func (s *Inbox) apply(ctx context.Context, group []*writeOp) error {
	var accepts []*acceptOp
	for _, op := range group {
		if op.accept != nil {
			accepts = append(accepts, op.accept)
		}
	}
	for _, a := range accepts {
		if err := s.insertEvent(ctx, a); err != nil {
			return err
		}
	}
	for _, op := range group {
		if op.fn != nil {
			if err := op.fn(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// insertEvent inserts an accepted event unless its (source, webhook-id)
// is stored already.
func (s *Inbox) insertEvent(ctx context.Context, a *acceptOp) error {
	a.res, a.created = inbox.AcceptResult{}, false
	r, err := s.st.insertEvent.ExecContext(ctx, a.p.Source, a.p.WebhookID, a.p.Type, a.headers, a.p.Body,
		a.p.ReceivedAt.UnixMicro(), a.p.ExpireAt.UnixMicro())
	if err != nil {
		return err
	}
	n, err := r.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		a.res.Duplicate = true
		return s.st.findEvent.QueryRowContext(ctx, a.p.Source, a.p.WebhookID).Scan(&a.res.Seq)
	}
	a.created = true
	a.res.Seq, err = r.LastInsertId()
	return err
}

// Accept implements inbox.Inbox.
func (s *Inbox) Accept(ctx context.Context, p inbox.AcceptParams) (inbox.AcceptResult, error) {
	if p.Body == nil {
		p.Body = []byte{} // nil would be stored as NULL
	}
	a := &acceptOp{p: p, headers: inbox.EncodeHeader(p.Header)}
	if err := s.q.Submit(ctx, &writeOp{accept: a}); err != nil {
		return inbox.AcceptResult{}, fmt.Errorf("gateway: sqlite: accept: %w", err)
	}
	return a.res, nil
}

// Cursor implements inbox.Inbox.
func (s *Inbox) Cursor(ctx context.Context, sink string) (int64, bool, error) {
	var seq int64
	err := s.st.cursor.QueryRowContext(ctx, sink).Scan(&seq)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("gateway: sqlite: cursor: %w", err)
	}
	return seq, true, nil
}

// SetCursor implements inbox.Inbox.
func (s *Inbox) SetCursor(ctx context.Context, sink string, seq int64) error {
	err := s.q.Submit(ctx, &writeOp{fn: func(ctx context.Context) error {
		_, err := s.st.setCursor.ExecContext(ctx, sink, seq)
		return err
	}})
	if err != nil {
		return fmt.Errorf("gateway: sqlite: set cursor: %w", err)
	}
	return nil
}

// AddRetry implements inbox.Inbox.
func (s *Inbox) AddRetry(ctx context.Context, p inbox.RetryParams) error {
	next, dead := retryTimes(p)
	err := s.q.Submit(ctx, &writeOp{fn: func(ctx context.Context) error {
		_, err := s.st.insertRetry.ExecContext(ctx, p.Seq, p.Sink, p.Attempts, next, p.LastError, dead)
		return err
	}})
	if err != nil {
		return fmt.Errorf("gateway: sqlite: add retry: %w", err)
	}
	return nil
}

// UpdateRetry implements inbox.Inbox.
func (s *Inbox) UpdateRetry(ctx context.Context, p inbox.RetryParams) error {
	next, dead := retryTimes(p)
	err := s.q.Submit(ctx, &writeOp{fn: func(ctx context.Context) error {
		if p.Done {
			_, err := s.st.deleteRetry.ExecContext(ctx, p.Seq, p.Sink)
			return err
		}
		_, err := s.st.updateRetry.ExecContext(ctx, p.Attempts, next, p.LastError, dead, p.Seq, p.Sink)
		return err
	}})
	if err != nil {
		return fmt.Errorf("gateway: sqlite: update retry: %w", err)
	}
	return nil
}

func retryTimes(p inbox.RetryParams) (next int64, dead int) {
	if p.Dead {
		return math.MaxInt64, 1
	}
	return p.NextAt.UnixMicro(), 0
}

// Sweep implements inbox.Inbox.
func (s *Inbox) Sweep(ctx context.Context, p inbox.SweepParams) (int, error) {
	var n int64
	err := s.q.Submit(ctx, &writeOp{fn: func(ctx context.Context) error {
		r, err := s.st.sweep.ExecContext(ctx, p.Source, p.Now.UnixMicro(), p.Upto, p.Limit)
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	}})
	if err != nil {
		return 0, fmt.Errorf("gateway: sqlite: sweep: %w", err)
	}
	return int(n), nil
}

// DueRetries implements inbox.Inbox.
func (s *Inbox) DueRetries(ctx context.Context, sink string, now time.Time, limit int, skip func(int64) bool) ([]inbox.Forward, error) {
	rows, err := s.st.dueRetries.QueryContext(ctx, sink, now.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("gateway: sqlite: due retries: %w", err)
	}
	defer rows.Close()
	var out []inbox.Forward
	for len(out) < limit && rows.Next() {
		var f inbox.Forward
		var headers string
		var recv int64
		if err := rows.Scan(&f.Seq, &f.Attempts, &f.Source, &f.WebhookID, &f.Type, &headers, &f.Body, &recv); err != nil {
			return nil, fmt.Errorf("gateway: sqlite: due retries: %w", err)
		}
		if skip != nil && skip(f.Seq) {
			continue
		}
		f.Sink, f.Header, f.ReceivedAt = sink, inbox.DecodeHeader(headers), time.UnixMicro(recv)
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gateway: sqlite: due retries: %w", err)
	}
	return out, nil
}

// After implements inbox.Inbox. Readers that keep up are served from the
// in-memory tail; others read the file.
func (s *Inbox) After(ctx context.Context, source string, after int64, limit int) ([]inbox.Event, int64, error) {
	if evs, next, ok := s.tail.After(source, after, limit); ok {
		return evs, next, nil
	}
	hi := s.tail.LastSeq() // committed before the query starts: in its snapshot
	rows, err := s.st.after.QueryContext(ctx, after, hi, source, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("gateway: sqlite: after: %w", err)
	}
	defer rows.Close()
	var out []inbox.Event
	for rows.Next() {
		var e inbox.Event
		var headers string
		var recv int64
		if err := rows.Scan(&e.Seq, &e.Source, &e.WebhookID, &e.Type, &headers, &e.Body, &recv); err != nil {
			return nil, 0, fmt.Errorf("gateway: sqlite: after: %w", err)
		}
		e.Header, e.ReceivedAt = inbox.DecodeHeader(headers), time.UnixMicro(recv)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("gateway: sqlite: after: %w", err)
	}
	if len(out) == limit {
		return out, out[len(out)-1].Seq, nil
	}
	return out, max(after, hi), nil
}

// Since implements inbox.Inbox.
func (s *Inbox) Since(ctx context.Context, source string, t time.Time) (int64, int64, error) {
	var first sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT min(seq) FROM events WHERE source = ? AND received_at >= ?`,
		source, t.UnixMicro()).Scan(&first); err != nil {
		return 0, 0, fmt.Errorf("gateway: sqlite: since: %w", err)
	}
	if !first.Valid {
		last, err := s.LastSeq(ctx)
		return last, 0, err
	}
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE source = ? AND seq >= ?`,
		source, first.Int64).Scan(&n); err != nil {
		return 0, 0, fmt.Errorf("gateway: sqlite: since: %w", err)
	}
	return first.Int64 - 1, n, nil
}

// LastSeq implements inbox.Inbox.
func (s *Inbox) LastSeq(ctx context.Context) (int64, error) {
	var seq sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT max(seq) FROM events`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("gateway: sqlite: last seq: %w", err)
	}
	return seq.Int64, nil
}

// PendingRetries implements inbox.Inbox.
func (s *Inbox) PendingRetries(ctx context.Context) (map[string]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT sink, count(*) FROM retries WHERE dead = 0 GROUP BY sink`)
	if err != nil {
		return nil, fmt.Errorf("gateway: sqlite: pending: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var sink string
		var n int64
		if err := rows.Scan(&sink, &n); err != nil {
			return nil, fmt.Errorf("gateway: sqlite: pending: %w", err)
		}
		out[sink] = n
	}
	return out, rows.Err()
}

// Changed implements inbox.Inbox.
func (s *Inbox) Changed() <-chan struct{} { return s.changed.Wait() }

// Ping implements inbox.Inbox.
func (s *Inbox) Ping(ctx context.Context) error {
	if s.q.Closed() {
		return inbox.ErrClosed
	}
	return s.r.PingContext(ctx)
}

// checkpointer copies the WAL back into the database file from its own
// connection, so the writer never stalls on a checkpoint (and its fsync).
// PASSIVE never blocks the writer or readers; the writer restarts the WAL
// from its beginning once a checkpoint has caught up.
func (s *Inbox) checkpointer() {
	defer close(s.ckDone)
	for range s.ckpt {
		s.pages.Store(0)
		_, _ = s.ckDB.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
	}
}

// CommitStats reports how many transactions the writer committed and how
// many operations they held: ops/commits is the mean group size.
func (s *Inbox) CommitStats() (commits, ops int64) { return s.nCommits.Load(), s.nOps.Load() }

// Close commits the operations already queued, then closes the file.
func (s *Inbox) Close() error {
	s.closeOnce.Do(func() {
		if s.q != nil {
			s.q.Close()
		}
		close(s.ckpt)
		<-s.ckDone
		s.closeErr = s.closeDBs()
	})
	return s.closeErr
}

func (s *Inbox) closeDBs() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.st.begin, s.st.commit, s.st.insertEvent, s.st.findEvent, s.st.setCursor, s.st.insertRetry,
		s.st.updateRetry, s.st.deleteRetry, s.st.sweep, s.st.after, s.st.dueRetries, s.st.cursor} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	errs = append(errs, s.wdb.Close())
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.ckDB != nil {
		errs = append(errs, s.ckDB.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gateway: sqlite: close: %w", err)
	}
	return nil
}
