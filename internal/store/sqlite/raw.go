package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	"modernc.org/sqlite"
)

// The two hot write transactions (PublishEvents, CompleteDeliveries) run
// on the writer's driver connection itself (sql.Conn.Raw), with
// statements the driver prepared once, instead of through database/sql:
// per transaction database/sql starts a goroutine to watch the context
// and wraps every prepared statement for the transaction (Tx.StmtContext),
// and per statement it takes locks and converts and checks every argument
// again before handing them to the driver. None of that is needed on a
// connection that only this store uses, one transaction at a time.
//
// rawTx is one such transaction. Its statements are driver statements
// prepared on that connection (rawStmts); a value is passed as the
// driver takes it (int64, float64, bool, []byte, string, nil), with int
// widened to int64.
type rawTx struct {
	ctx context.Context
	st  *rawStmts
	nv  []driver.NamedValue // reused argument buffer
}

// rawDriverConn is what the store needs of the driver's connection.
type rawDriverConn interface {
	driver.Conn
	driver.ConnPrepareContext
}

// rawStmt is a statement prepared by the driver.
type rawStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// rawStmts are the hot statements prepared on one driver connection: the
// writer's (database/sql may replace a connection it found broken; the
// statements are prepared again on the new one).
type rawStmts struct {
	conn                   any
	status                 sqlite.DBStatus // the connection's counters (nil: frames are not counted)
	begin, commit, rollbck rawStmt
	findIdem               rawStmt
	failureRun             rawStmt
	disableWebhook         rawStmt
	widenSpan              rawStmt
	addLeaseSpan           rawStmt
	// The multi-row statements, by family and by row count: sized[f][n]
	// writes n rows, for each power of two n up to insertBatch, so a
	// group's rows cost one statement per insertBatch rows and at most
	// log2(insertBatch) for the remainder (one per bit of it), instead of
	// one per row. All row counts would save a few more statements at
	// ~1 ms each to prepare on every open.
	sized [numFamilies][insertBatch + 1]rawStmt
	// statsShapes are the rollup upserts of the counter shapes seen
	// (statsStmt), by row count; statsBuf their reused arguments.
	statsShapes map[statsShape]*[insertBatch + 1]rawStmt
	statsBuf    []any
	all         []rawStmt
	// nv is the argument buffer the connection's transactions reuse (a
	// multi-row statement binds up to 768 values: grown afresh by every
	// transaction, it was the largest allocation per delivery).
	nv []driver.NamedValue
}

// family is a multi-row statement family: its SQL for a number of rows.
type family int

const (
	famEvents family = iota
	famPlainEvents
	famDeliveries
	famFresh
	famAttempts
	famPlainAttempts
	famComplete
	famSucceed
	famInline
	famFan
	famStats
	numFamilies
)

var familySQL = [numFamilies]func(rows int) string{
	famEvents:        insertEventsSQL,
	famPlainEvents:   plainEventsSQL,
	famDeliveries:    insertDeliveriesSQL,
	famFresh:         freshDeliveriesSQL,
	famAttempts:      insertAttemptsSQL,
	famPlainAttempts: plainAttemptsSQL,
	famComplete:      completeManySQL,
	famSucceed:       succeedManySQL,
	famInline:        inlineManySQL,
	famFan:           fanDeliveriesSQL,
	famStats:         statsUpsertManySQL,
}

// prepareRaw prepares every hot statement on dc.
func prepareRaw(ctx context.Context, dc any) (*rawStmts, error) {
	c, ok := dc.(rawDriverConn)
	if !ok {
		return nil, fmt.Errorf("sqlite: driver connection %T cannot prepare statements", dc)
	}
	st := &rawStmts{conn: c}
	st.status, _ = dc.(sqlite.DBStatus)
	prep := func(dst *rawStmt, query string) error {
		r, err := st.prepare(ctx, query)
		*dst = r
		return err
	}
	for _, p := range []struct {
		dst *rawStmt
		sql string
	}{
		{&st.begin, `BEGIN IMMEDIATE`},
		{&st.commit, `COMMIT`},
		{&st.rollbck, `ROLLBACK`},
		{&st.findIdem, `SELECT ` + eventCols + ` FROM events
			WHERE project_id = ? AND idempotency_key = ? AND idempotency_key != ''`},
		{&st.failureRun, failureRunSQL},
		{&st.disableWebhook, `UPDATE webhooks SET state = 'disabled_due_to_failed_deliveries',
			update_time = ? WHERE id = ? AND state = 'enabled'`},
		{&st.widenSpan, widenSpanSQL(`id = ?`)},
		{&st.addLeaseSpan, `INSERT INTO lease_spans (expire, first, last) VALUES (?, ?, ?)`},
	} {
		if err := prep(p.dst, p.sql); err != nil {
			st.close()
			return nil, err
		}
	}
	for f := range numFamilies {
		for n := 1; n <= insertBatch; n *= 2 {
			if err := prep(&st.sized[f][n], familySQL[f](n)); err != nil {
				st.close()
				return nil, err
			}
		}
	}
	return st, nil
}

// prepare prepares query on the connection; close finalizes it.
func (st *rawStmts) prepare(ctx context.Context, query string) (rawStmt, error) {
	s, err := st.conn.(rawDriverConn).PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	r, ok := s.(rawStmt)
	if !ok {
		_ = s.Close()
		return nil, fmt.Errorf("sqlite: driver statement %T cannot run with a context", s)
	}
	st.all = append(st.all, r)
	return r, nil
}

func (st *rawStmts) close() {
	for _, s := range st.all {
		_ = s.Close()
	}
	st.all = nil
}

// withRaw runs fn on the writer's driver connection, with the hot
// statements prepared on it.
func (s *Store) withRaw(ctx context.Context, fn func(st *rawStmts) error) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		if s.raw == nil || s.raw.conn != dc {
			// A connection database/sql replaced is closed, and its
			// statements with it: they are dropped, not closed again.
			st, err := prepareRaw(ctx, dc)
			if err != nil {
				s.raw = nil
				return fmt.Errorf("sqlite: prepare: %w", err)
			}
			s.raw = st
		}
		panicking := true
		defer func() {
			if panicking {
				// database/sql closes a connection whose Raw panicked:
				// close its statements first, while it is open.
				s.raw.close()
				s.raw = nil
			}
		}()
		err := fn(s.raw)
		panicking = false
		return err
	})
}

// inRawTx runs fn in a write transaction (BEGIN IMMEDIATE) on the
// writer's driver connection and commits if fn returns nil. Whatever
// happens, the connection goes back without a transaction open.
func (s *Store) inRawTx(ctx context.Context, fn func(t *rawTx) error) error {
	var frames int64
	err := s.withRaw(ctx, func(st *rawStmts) (err error) {
		t := &rawTx{ctx: ctx, st: st, nv: st.nv}
		defer func() {
			clear(t.nv[:cap(t.nv)]) // hold no values past the transaction
			st.nv = t.nv[:0]
		}()
		if err := t.exec(st.begin); err != nil {
			return err
		}
		committed := false
		defer func() {
			if !committed {
				// Also after a panic in fn. A transaction SQLite already
				// rolled back (a full disk) makes this fail: nothing to do.
				_, _ = st.rollbck.ExecContext(context.Background(), nil)
			}
		}()
		if err := fn(t); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// Not interruptible: the transaction is complete.
		if _, err := st.commit.ExecContext(context.Background(), nil); err != nil {
			return err
		}
		committed = true
		frames = st.walFrames()
		return nil
	})
	if err != nil {
		return err
	}
	s.noteCommit(frames)
	return nil
}

// walFrames is the number of pages the connection has written to the
// WAL since the last call: SQLite's count of pages written
// (SQLITE_DBSTATUS_CACHE_WRITE, read and reset), which in WAL mode is the
// frames its commits appended (pagerWalFrames). 0 if it cannot be read.
func (st *rawStmts) walFrames() int64 {
	if st.status == nil {
		return 0
	}
	n, _, err := st.status.Status(sqlite.DBStatusCacheWrite, true)
	if err != nil {
		return 0
	}
	return int64(n)
}

// args fills t's argument buffer with args.
func (t *rawTx) args(args []any) []driver.NamedValue {
	t.nv = t.nv[:0]
	for i, a := range args {
		if v, ok := a.(int); ok {
			a = int64(v)
		}
		t.nv = append(t.nv, driver.NamedValue{Ordinal: i + 1, Value: a})
	}
	return t.nv
}

// argsShared fills t's argument buffer with shared, then args (with last,
// args, then shared).
func (t *rawTx) argsShared(shared, args []any, last bool) []driver.NamedValue {
	t.nv = t.nv[:0]
	lists := [2][]any{shared, args}
	if last {
		lists[0], lists[1] = args, shared
	}
	for _, list := range lists {
		for _, a := range list {
			if v, ok := a.(int); ok {
				a = int64(v)
			}
			t.nv = append(t.nv, driver.NamedValue{Ordinal: len(t.nv) + 1, Value: a})
		}
	}
	return t.nv
}

// execShared runs st with shared, then args (with last, args, then
// shared), and returns how many rows it changed.
func (t *rawTx) execShared(st rawStmt, shared, args []any, last bool) (int, error) {
	res, err := st.ExecContext(t.ctx, t.argsShared(shared, args, last))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// exec runs st with args.
func (t *rawTx) exec(st rawStmt, args ...any) error {
	_, err := st.ExecContext(t.ctx, t.args(args))
	return err
}

// queryRow runs st with args and returns its first row (sql.ErrNoRows
// if none), read in full before it returns.
func (t *rawTx) queryRow(st rawStmt, args ...any) (*rawRow, error) {
	rows, err := st.QueryContext(t.ctx, t.args(args))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	vals := make([]driver.Value, len(rows.Columns()))
	switch err := rows.Next(vals); {
	case errors.Is(err, io.EOF):
		return nil, sql.ErrNoRows
	case err != nil:
		return nil, err
	}
	for i, v := range vals {
		if b, ok := v.([]byte); ok {
			vals[i] = append([]byte(nil), b...) // the driver may reuse it
		}
	}
	return &rawRow{vals: vals}, nil
}

// rawRow is a row read by queryRow.
type rawRow struct{ vals []driver.Value }

// Scan copies the row's values into dest (pointers to string, []byte,
// int, int64, bool or any), as sql.Row.Scan would for these types.
func (r *rawRow) Scan(dest ...any) error {
	if len(dest) != len(r.vals) {
		return fmt.Errorf("sqlite: scan: %d destinations for %d columns", len(dest), len(r.vals))
	}
	for i, v := range r.vals {
		if err := scanValue(dest[i], v); err != nil {
			return fmt.Errorf("sqlite: scan column %d: %w", i, err)
		}
	}
	return nil
}

func scanValue(dest any, v driver.Value) error {
	switch d := dest.(type) {
	case *any:
		*d = v
		return nil
	case *string:
		switch x := v.(type) {
		case string:
			*d = x
			return nil
		case []byte:
			*d = string(x)
			return nil
		case nil:
			return errors.New("NULL into a string")
		}
	case *[]byte:
		switch x := v.(type) {
		case []byte:
			*d = x
			return nil
		case string:
			*d = []byte(x)
			return nil
		case nil:
			*d = nil
			return nil
		}
	case *int64:
		if x, ok := v.(int64); ok {
			*d = x
			return nil
		}
	case *int:
		if x, ok := v.(int64); ok {
			*d = int(x)
			return nil
		}
	case *bool:
		if x, ok := v.(int64); ok {
			*d = x != 0
			return nil
		}
	}
	return fmt.Errorf("cannot store %T into %T", v, dest)
}
