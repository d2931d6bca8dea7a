package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/longhook/longhook/internal/core"
)

// Options tunes a store. The zero value is the default used by Open.
type Options struct {
	// Synchronous is the SQLite synchronous pragma of the writer: "NORMAL"
	// (default) survives a crash or kill -9 of the process but may lose the
	// last commits on power loss or an OS crash; "FULL" also survives those,
	// at the cost of an fsync per commit.
	Synchronous string
	// ReadConns is the size of the read-only pool (default 4).
	ReadConns int
	// BusyTimeout is how long a connection waits for a lock held by
	// another process sharing the file (default 10 s).
	BusyTimeout time.Duration

	// pageSize is the page size a new database file gets (default
	// newPageSize); a file that holds a database keeps its own. Tests set
	// it to make files as earlier versions did (4 KiB).
	pageSize int
	// checkpointIdle is the longest time between two background
	// checkpoints (default checkpointIdle); tests lengthen it to see
	// the checkpoints that WAL growth starts alone.
	checkpointIdle time.Duration
}

func (o Options) withDefaults() Options {
	if o.Synchronous == "" {
		o.Synchronous = "NORMAL"
	}
	if o.ReadConns <= 0 {
		o.ReadConns = 4
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 10 * time.Second
	}
	if o.pageSize <= 0 {
		o.pageSize = newPageSize
	}
	if o.checkpointIdle <= 0 {
		o.checkpointIdle = checkpointIdle
	}
	return o
}

func (o Options) validate() error {
	switch strings.ToUpper(o.Synchronous) {
	case "NORMAL", "FULL", "EXTRA":
		return nil
	}
	return fmt.Errorf("sqlite: synchronous must be NORMAL, FULL or EXTRA, not %q", o.Synchronous)
}

// Store is the SQLite implementation of core.Store. It is safe for
// concurrent use.
type Store struct {
	w    *sql.DB // the only writer: one connection, BEGIN IMMEDIATE
	r    *sql.DB // read-only pool
	wake chan struct{}
	st   stmts
	// raw: the hot write transactions' statements, prepared by the driver
	// on the writer's connection (see rawTx); used only inside that
	// connection's Raw, so never by two goroutines at once.
	raw *rawStmts

	// claimed counts delivery slots asked for by ClaimDeliveries; it
	// spreads the retry share (a quarter of every batch) exactly, also
	// when batches are smaller than four.
	claimed atomic.Int64

	// The background checkpointer (see checkpointer).
	ck          *sql.DB
	ckKick      chan struct{}
	ckStop      chan struct{}
	ckDone      chan struct{}
	ckIdle      time.Duration
	ckFrames    atomic.Int64 // WAL frames committed since the last background checkpoint began
	checkpoints atomic.Int64 // background checkpoints started

	closeOnce sync.Once
	closeErr  error
}

var _ core.Store = (*Store)(nil)

// writerCacheKiB is the writer connection's page cache (cache_size in
// KiB; see openWriter for why it is small).
const writerCacheKiB = 8 << 10

// Open opens (creating if needed) the database file at path with the
// default Options and applies pending migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenWithOptions(ctx, path, Options{})
}

// OpenWithOptions is Open with explicit options.
func OpenWithOptions(ctx context.Context, path string, o Options) (*Store, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
	}
	if err := createPrivate(path); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if err := registerWALVFS(); err != nil {
		return nil, err
	}
	busy := strconv.FormatInt(o.BusyTimeout.Milliseconds(), 10)
	// vfs: SQLite's unix VFS appending each WAL frame in one write (walvfs.go).
	base := "file:" + (&url.URL{Path: path}).EscapedPath() + "?vfs=" + walVFSName + "&_pragma=busy_timeout(" + busy + ")"

	w, err := openWriter(ctx, base, o)
	if err != nil {
		return nil, err
	}
	s := &Store{w: w, wake: make(chan struct{}, 1), ckKick: make(chan struct{}, 1), ckStop: make(chan struct{}), ckDone: make(chan struct{}), ckIdle: o.checkpointIdle}
	if err := s.migrate(ctx); err != nil {
		_ = w.Close()
		return nil, err
	}

	r, err := sql.Open("sqlite", base+
		"&_pragma=cache_size(-16384)"+
		"&_pragma=temp_store(MEMORY)"+
		"&_query_only=1")
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	r.SetMaxOpenConns(o.ReadConns)
	r.SetMaxIdleConns(o.ReadConns)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	s.r = r
	if err := s.prepare(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	ck, err := sql.Open("sqlite", base)
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	ck.SetMaxOpenConns(1)
	ck.SetMaxIdleConns(1)
	ck.SetConnMaxLifetime(0)
	ck.SetConnMaxIdleTime(0)
	s.ck = ck
	go s.checkpointer()
	return s, nil
}

// openWriter opens and connects the writer's connection to base (the
// file's URI).
func openWriter(ctx context.Context, base string, o Options) (*sql.DB, error) {
	// page_size must run before the file is first written, which setting
	// WAL mode does: the driver runs the _pragma list (sorted by name, so
	// a journal_mode there would come first) before its _journal_mode key.
	// On a file that holds a database it changes nothing (see newPageSize).
	//
	// cache_size: the writer's page cache is kept small (8 MiB) on purpose.
	// SQLite's balance_nonroot renumbers split pages through the pending-byte
	// page (262,145 at 4 KiB), which raises the cache's largest key past the
	// database's size, so the commit that follows truncates the cache by
	// scanning its whole hash table and every cached page. A 64 MiB cache,
	// once full, made that ~3.5 % of a fan-out run's CPU; the writer's hot
	// set (the B-trees' right edges and interior pages) fits in far less.
	// design.md, "Storage".
	w, err := sql.Open("sqlite", base+
		"&_pragma=page_size("+strconv.Itoa(o.pageSize)+")"+
		"&_pragma=synchronous("+strings.ToUpper(o.Synchronous)+")"+
		"&_pragma=foreign_keys(0)"+
		"&_pragma=cache_size("+strconv.Itoa(-writerCacheKiB)+")"+
		"&_pragma=journal_size_limit(67108864)"+
		"&_pragma=temp_store(MEMORY)"+
		"&_pragma=wal_autocheckpoint("+strconv.Itoa(walBackstopPages)+")"+
		"&_journal_mode=WAL"+
		"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	if err := connectWriter(ctx, w, o.BusyTimeout); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	return w, nil
}

// prepare checks the readers' connection and prepares the writer's
// statements.
func (s *Store) prepare(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	if err := s.st.prepare(ctx, s.w); err != nil {
		return fmt.Errorf("sqlite: prepare: %w", err)
	}
	return s.withRaw(ctx, func(*rawStmts) error { return nil })
}

// newPageSize is the page size of a new database file: SQLite's 4 KiB.
// 16 KiB pages halved the WAL's pwrites per delivery at saturation
// (a commit's appended rows fill fewer, larger pages) but raised the p99
// of paced single publishes at half the saturated rate from 14 to 45 ms
// (docs/benchmarks.md, design.md "SQLite page size"), so the default
// stays. It is set before WAL mode first writes the file; SQLite cannot
// change the page size of a file in WAL mode, so a file made with other
// pages keeps them.
const newPageSize = 4096

// Checkpoints. SQLite's default runs a checkpoint inside the commit that
// takes the WAL past 1,000 pages: that commit, and every caller waiting on
// its group, waits for the pages to be copied into the database file and
// for two fsyncs (milliseconds, on the latency path of one group in a
// few hundred). The store checkpoints on a connection of its own instead,
// while the writer goes on (a PASSIVE checkpoint never blocks the writer
// or the readers), once the commits since the last one have written
// checkpointFrames pages to the WAL, and at least every checkpointIdle.
// The writer's own automatic checkpoint stays as a backstop at
// walBackstopPages: it runs only if the background one falls behind, and
// finds little left to copy when it does. Under sustained writes it is
// also what restarts the WAL from its start (a background checkpoint
// always ends behind the commits made while it ran, and SQLite restarts
// the log only once every frame is copied), so the -wal file grows to the
// backstop: 16.5 MB with 4 KiB pages, 65.6 MB with 16 KiB ones (within
// journal_size_limit's 64 MiB).
//
// A checkpoint copies the newest version of every page written since the
// last one, so a page that every commit rewrites (a B-tree's last leaf,
// its parents, the first page) is copied once per checkpoint however many
// commits wrote it: fewer checkpoints per WAL cycle copy fewer pages. The
// cadence is counted in WAL pages, not time (it was every 100 ms after a
// commit), so that the pages copied per delivery do not rise as the rate
// falls (at 11k fan-out deliveries/s, 100 ms was ~1,100 frames:
// docs/benchmarks.md); 1,500 frames keeps at most a quarter of the
// backstop's cycle for the inline checkpoint to copy, as 100 ms did at
// the highest rates measured.
const (
	walBackstopPages = 4000
	// checkpointFrames is how many pages the commits write to the WAL
	// between two background checkpoints.
	checkpointFrames = 1500
	// checkpointIdle is the longest time between two background
	// checkpoints: commits that write fewer pages, and writes made
	// outside inRawTx (which are not counted), are copied within it.
	checkpointIdle = time.Second
)

// noteCommit counts the WAL frames of commits and wakes the checkpointer
// once checkpointFrames were written since the last background
// checkpoint began.
func (s *Store) noteCommit(frames int64) {
	if frames > 0 && s.ckFrames.Add(frames) >= checkpointFrames {
		s.kickCheckpoint()
	}
}

// kickCheckpoint wakes the checkpointer.
func (s *Store) kickCheckpoint() {
	select {
	case s.ckKick <- struct{}{}:
	default:
	}
}

// checkpointer runs PASSIVE checkpoints on s.ck until Close: when
// noteCommit asks, and s.ckIdle after the last one.
func (s *Store) checkpointer() {
	defer close(s.ckDone)
	idle := time.NewTimer(s.ckIdle)
	defer idle.Stop()
	for {
		select {
		case <-s.ckStop:
			return
		case <-s.ckKick:
			if s.ckFrames.Load() < checkpointFrames {
				continue // a kick from before the last checkpoint began
			}
		case <-idle.C:
		}
		// Counted before it runs, so that whoever sees its work in the
		// WAL index also sees the count (TestCheckpointsInBackground).
		s.checkpoints.Add(1)
		// The frames committed from here on are the next one's.
		s.ckFrames.Store(0)
		// Best effort: an error (a busy lock held by another process on
		// the same file) leaves the work to the next round or to the
		// writer's backstop.
		_, _ = s.ck.Exec("PRAGMA wal_checkpoint(PASSIVE)")
		idle.Reset(s.ckIdle)
	}
}

// Close closes the database handles. Safe to call twice.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.ck != nil {
			close(s.ckStop)
			<-s.ckDone
			_ = s.ck.Close()
		}
		s.st.close()
		if conn, err := s.w.Conn(context.Background()); err == nil {
			_ = conn.Raw(func(dc any) error {
				// Statements of a connection database/sql has replaced
				// (a write failed, e.g. on a full disk) went with it:
				// finalizing them on the closed handle would crash.
				if s.raw != nil && s.raw.conn == dc {
					s.raw.close()
				}
				s.raw = nil
				return nil
			})
			_ = conn.Close()
		}
		var errs []error
		if s.r != nil {
			errs = append(errs, s.r.Close())
		}
		// Refresh planner statistics and keep the WAL small across
		// restarts; both are best effort.
		_, _ = s.w.Exec("PRAGMA optimize")
		_, _ = s.w.Exec("PRAGMA wal_checkpoint(PASSIVE)")
		errs = append(errs, s.w.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Wake implements core.Store. SQLite has no cross-process notification,
// so only commits made through this Store signal it.
func (s *Store) Wake() <-chan struct{} { return s.wake }

func (s *Store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Capabilities implements core.Store.
func (s *Store) Capabilities() core.Capabilities {
	return core.Capabilities{Driver: "sqlite", SharedAcrossProcesses: false}
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE on the single
// writer connection) and commits if fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	// Its WAL frames are counted by the next inRawTx (the connection's
	// count of pages written goes on), or copied within checkpointIdle.
	return tx.Commit()
}

// micros converts t to unix microseconds; the zero time is 0.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros is the inverse of micros; results are UTC.
func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// isConstraint reports whether err is a UNIQUE or PRIMARY KEY violation.
func isConstraint(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return true
	}
	return false
}

// isFull reports whether err is SQLite's "database or disk is full".
func isFull(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL
}

// wrap prefixes err for op, mapping sql.ErrNoRows to core.ErrNotFound,
// key violations to core.ErrAlreadyExists and a full disk to
// core.ErrUnavailable (nothing was written; retrying once there is room
// succeeds).
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows), errors.Is(err, core.ErrNotFound):
		return fmt.Errorf("sqlite: %s: %w", op, core.ErrNotFound)
	case isConstraint(err):
		return fmt.Errorf("sqlite: %s: %w: %w", op, core.ErrAlreadyExists, err)
	case isFull(err):
		return fmt.Errorf("sqlite: %s: %w: disk full: %w", op, core.ErrUnavailable, err)
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// rowsAffected returns core.ErrNotFound when res changed no row.
func rowsAffected(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return core.ErrNotFound
	}
	return nil
}

// createPrivate creates the database file mode 0600 if it does not exist
// yet, so that SQLite (which gives the -wal and -shm files the database
// file's mode) never creates it world-readable under a 022 umask. An
// existing file keeps its mode.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// connectWriter opens the writer's connection, which sets the file's
// page size and WAL mode. Two processes opening one new file at once race
// there: the loser of the change to WAL mode gets SQLITE_BUSY at once
// (SQLite does not wait on a lock upgrade that could deadlock), so it
// tries again until busy has passed, as the busy timeout would have.
func connectWriter(ctx context.Context, w *sql.DB, busy time.Duration) error {
	deadline := time.Now().Add(busy)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		err := w.PingContext(ctx)
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().Add(wait).After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
