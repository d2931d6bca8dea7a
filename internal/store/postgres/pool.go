package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgdb"
)

// newPool creates the pool (no connection is made yet); see pgdb.NewPool.
func newPool(ctx context.Context, cfg *pgxpool.Config, maxConns int32) (*pgxpool.Pool, error) {
	return pgdb.NewPool(ctx, cfg, maxConns, registerTypes)
}

// Retries of transient failures inside the driver: exponential backoff
// from retryBase (±50 % jitter, capped at retryMax) for up to retryBudget,
// long enough to ride out a PostgreSQL restart without an error reaching
// the caller, short enough that a real outage surfaces.
const (
	retryBase   = 25 * time.Millisecond
	retryMax    = time.Second
	retryBudget = 10 * time.Second
)

// run acquires a pool connection, calls fn with it and releases it,
// retrying transient failures:
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
	deadline := time.Now().Add(retryBudget)
	for attempt := 1; ; attempt++ {
		err := s.runOnce(ctx, fn)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil || !retryable(err, idempotent) {
			return unavailable(err)
		}
		s.log.Debug("postgres.retry", slog.Int("attempt", attempt), slog.String("error", err.Error()))
		d := backoff/2 + rand.N(backoff)
		backoff = min(backoff*2, retryMax)
		if !core.Sleep(ctx, d) {
			return unavailable(err)
		}
	}
}

// runOnce is one attempt of run. A connection found closed after a
// failure (not by a cancelled context) resets the pool: after a server
// restart every idle connection is dead too, and pgxpool would hand out
// one idle for less than a second without pinging it. Connections in use
// are closed when they are released; the next requests dial new ones.
func (s *Store) runOnce(ctx context.Context, fn func(c *pgx.Conn) error) error {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		var ce *pgconn.ConnectError
		if errors.As(err, &ce) {
			return &connectError{err}
		}
		return err
	}
	c := pc.Conn()
	err = fn(c)
	broken := err != nil && c.IsClosed() && !isContextErr(err)
	pc.Release()
	if broken {
		s.pool.Reset()
		if !pgconn.SafeToRetry(err) {
			err = &lostConnError{err}
		}
	}
	return err
}

// inTx runs fn in a transaction (see run for retries).
func (s *Store) inTx(ctx context.Context, idempotent bool, fn func(tx pgx.Tx) error) error {
	return s.run(ctx, idempotent, func(c *pgx.Conn) error { return pgx.BeginFunc(ctx, c, fn) })
}

// connectError marks a failure to dial: nothing was sent, so retrying is
// always safe (unless the server refused the login, see retryable). It
// unwraps to pgdb's marker, which pgdb.Classify reads.
type connectError struct{ err error }

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return &pgdb.ConnectError{Err: e.err} }

// lostConnError marks an error after which the connection was found
// closed: the outcome of the request is unknown (pgdb.LostError).
type lostConnError struct{ err error }

func (e *lostConnError) Error() string { return e.err.Error() }
func (e *lostConnError) Unwrap() error { return &pgdb.LostError{Err: e.err} }

// unavailable marks a failure that may go away by itself (the server
// unreachable, restarting or failing over, an outcome lost with the
// connection) as core.ErrUnavailable, so the API answers 503 UNAVAILABLE
// ("retry") rather than 500 INTERNAL. The error still unwraps to the
// driver's.
func unavailable(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || !pgdb.Transient(err) {
		return unwrapLost(err)
	}
	return fmt.Errorf("%w: %w", core.ErrUnavailable, unwrapLost(err))
}

func unwrapLost(err error) error {
	var le *lostConnError
	if errors.As(err, &le) && err == error(le) {
		return le.err
	}
	return err
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// retryable reports whether run tries fn again after err (pgdb.Classify):
// a failure that left nothing done always, one whose outcome is unknown
// only for idempotent operations, never once the caller's context ended.
func retryable(err error, idempotent bool) bool {
	if isContextErr(err) {
		return false
	}
	switch pgdb.Classify(err) {
	case pgdb.Safe:
		return true
	case pgdb.Unknown:
		return idempotent
	}
	return false
}

func closeConn(c *pgx.Conn) { pgdb.CloseConn(c) }
