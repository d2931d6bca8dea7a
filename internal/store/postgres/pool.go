package postgres

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pool is a small LIFO pool of *pgx.Conn. (pgx's own pgxpool needs
// github.com/jackc/puddle/v2 listed in go.mod, which it is not; this pool
// is what the driver needs and nothing more.) Its rules are pgxpool's:
//
//   - at most max connections exist; acquire waits for a free one;
//   - a connection idle for more than pingAfterIdle is pinged before
//     use, and replaced if the ping fails;
//   - a connection that comes back closed, busy or inside a transaction
//     is discarded, and when one is found broken (not by a cancelled
//     context) every idle connection is discarded with it: after a server
//     restart they are all dead, and nothing hands a dead one out again;
//   - connections are replaced after maxConnLifetime and closed after
//     maxConnIdle unused.
//
// New connections are dialed lazily, by acquire, so a pool never hot-loops
// reconnecting on its own.
type pool struct {
	cfg    *pgx.ConnConfig
	tokens chan struct{} // one per live or dialing connection in use

	mu     sync.Mutex
	idle   []*pooledConn // most recently released last
	closed bool
}

type pooledConn struct {
	conn      *pgx.Conn
	created   time.Time
	idleSince time.Time
}

const (
	pingAfterIdle   = time.Second
	maxConnLifetime = time.Hour
	maxConnIdle     = 10 * time.Minute
)

var errPoolClosed = errors.New("postgres: store closed")

func newPool(cfg *pgx.ConnConfig, max int) *pool {
	return &pool{cfg: cfg, tokens: make(chan struct{}, max)}
}

// acquire returns a healthy connection; release must be called with it.
func (p *pool) acquire(ctx context.Context) (*pooledConn, error) {
	select {
	case p.tokens <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			<-p.tokens
			return nil, errPoolClosed
		}
		var pc *pooledConn
		if n := len(p.idle); n > 0 {
			pc, p.idle = p.idle[n-1], p.idle[:n-1]
		}
		p.mu.Unlock()
		if pc == nil {
			break
		}
		if time.Since(pc.created) > maxConnLifetime {
			closeConn(pc.conn)
			continue
		}
		if time.Since(pc.idleSince) > pingAfterIdle {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := pc.conn.Ping(pctx)
			cancel()
			if err != nil {
				closeConn(pc.conn)
				if ctx.Err() != nil {
					<-p.tokens
					return nil, ctx.Err()
				}
				continue
			}
		}
		return pc, nil
	}
	c, err := connect(ctx, p.cfg)
	if err != nil {
		<-p.tokens
		return nil, &connectError{err}
	}
	return &pooledConn{conn: c, created: time.Now()}, nil
}

// release returns pc to the pool; opErr is the error of what was done with
// it, if any.
func (p *pool) release(pc *pooledConn, opErr error) {
	defer func() { <-p.tokens }()
	c := pc.conn
	healthy := !c.IsClosed() && !c.PgConn().IsBusy() && c.PgConn().TxStatus() == 'I'
	broken := c.IsClosed() && opErr != nil && !isContextErr(opErr)
	now := time.Now()

	var drop []*pooledConn
	p.mu.Lock()
	switch {
	case broken:
		drop, p.idle = p.idle, nil
	case healthy && !p.closed && now.Sub(pc.created) < maxConnLifetime:
		// The oldest idle connection is first; close it if unused for long.
		if len(p.idle) > 0 && now.Sub(p.idle[0].idleSince) > maxConnIdle {
			drop = append(drop, p.idle[0])
			p.idle = p.idle[1:]
		}
		pc.idleSince = now
		p.idle = append(p.idle, pc)
		pc = nil
	}
	p.mu.Unlock()
	if pc != nil {
		closeConn(pc.conn)
	}
	for _, d := range drop {
		closeConn(d.conn)
	}
}

// close closes the idle connections; connections in use are closed when
// they are released.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, pc := range idle {
		closeConn(pc.conn)
	}
}

func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.Close(ctx)
}

// connectError marks a failure to dial: nothing was sent, so retrying is
// always safe.
type connectError struct{ err error }

func (e *connectError) Error() string { return "connect: " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Retries of transient failures inside the driver: maxAttempts tries in
// all, with exponential backoff from retryBase (±50 % jitter).
const (
	maxAttempts = 5
	retryBase   = 25 * time.Millisecond
)

// run acquires a connection, calls fn with it and releases it, retrying
// transient failures:
//
//   - serialization failures (40001) and deadlocks (40P01): the
//     transaction was rolled back, so a retry is always safe;
//   - failures to connect, and errors pgconn reports as SafeToRetry
//     (nothing reached the server);
//   - when idempotent is set, also connection failures after the request
//     may have reached the server (a lost connection, the server shutting
//     down): fn may have committed, so only operations that can run twice
//     with the same effect pass idempotent.
//
// fn must not keep the connection.
func (s *Store) run(ctx context.Context, idempotent bool, fn func(c *pgx.Conn) error) error {
	backoff := retryBase
	for attempt := 1; ; attempt++ {
		pc, err := s.pool.acquire(ctx)
		if err == nil {
			err = fn(pc.conn)
			s.pool.release(pc, err)
			if err != nil && pc.conn.IsClosed() && !isContextErr(err) && !pgconn.SafeToRetry(err) {
				err = &lostConnError{err}
			}
		}
		if err == nil || attempt >= maxAttempts || ctx.Err() != nil || !retryable(err, idempotent) {
			return unwrapLost(err)
		}
		s.log.Debug("postgres.retry", slog.Int("attempt", attempt), slog.String("error", err.Error()))
		d := backoff/2 + rand.N(backoff)
		backoff *= 2
		if !sleep(ctx, d) {
			return unwrapLost(err)
		}
	}
}

// inTx runs fn in a transaction (see run for retries).
func (s *Store) inTx(ctx context.Context, idempotent bool, fn func(tx pgx.Tx) error) error {
	return s.run(ctx, idempotent, func(c *pgx.Conn) error { return pgx.BeginFunc(ctx, c, fn) })
}

// lostConnError marks an error after which the connection was found
// closed: the outcome of the request is unknown.
type lostConnError struct{ err error }

func (e *lostConnError) Error() string { return e.err.Error() }
func (e *lostConnError) Unwrap() error { return e.err }

func unwrapLost(err error) error {
	var le *lostConnError
	if errors.As(err, &le) && err == error(le) {
		return le.err
	}
	return err
}

func retryable(err error, idempotent bool) bool {
	if isContextErr(err) || errors.Is(err, errPoolClosed) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "40001", pe.Code == "40P01":
			return true
		case pe.Code == "57P03": // the database system is starting up
			return true
		case strings.HasPrefix(pe.Code, "28"), strings.HasPrefix(pe.Code, "3D"):
			return false // authentication, unknown database: not transient
		}
	}
	var ce *connectError
	if errors.As(err, &ce) || pgconn.SafeToRetry(err) {
		return true
	}
	var le *lostConnError
	if errors.As(err, &le) {
		return idempotent
	}
	if pe != nil && (pe.Code == "57P01" || pe.Code == "57P02" || strings.HasPrefix(pe.Code, "08")) {
		return idempotent
	}
	return false
}
