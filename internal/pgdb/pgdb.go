// Package pgdb is the PostgreSQL plumbing that the sender's store
// (internal/store/postgres) and the gateway's inbox
// (internal/gateway/inbox/postgres) share: one reading of which failures
// are transient, one pool setup, and one migration mechanism (numbered SQL
// files recorded in a table of applied versions).
package pgdb

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Class is what a failure says about running the operation again.
type Class int

const (
	// Permanent: the request's own error (bad data, a missing table), a
	// refused login or unknown database, or a cancelled context. Running
	// it again fails the same way.
	Permanent Class = iota
	// Safe: nothing took effect (the connection could not be made, the
	// request never left, the transaction was rolled back by a
	// serialization failure or deadlock, the server refused it while
	// starting or at its connection limit). A retry is always safe.
	Safe
	// Unknown: the connection failed while the request was out (lost,
	// reset, the server shutting down, a timeout). It may have taken
	// effect: only an operation that can run twice may be retried.
	Unknown
)

// Classify says what err means for a retry (nil is Permanent: there is
// nothing to retry).
func Classify(err error) Class {
	if err == nil || errors.Is(err, context.Canceled) {
		return Permanent
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "28"), strings.HasPrefix(pe.Code, "3D"):
			return Permanent // authentication, unknown database
		case pe.Code == "40001", pe.Code == "40P01", // serialization failure, deadlock
			pe.Code == "55P03",                     // lock not available
			pe.Code == "57P03",                     // the database system is starting up
			pe.Code == "53300", pe.Code == "53400": // too many connections, configuration limit
			return Safe
		case pe.Code == "57P01", pe.Code == "57P02", // admin or crash shutdown
			pe.Code == "57014",               // statement timeout, cancel
			strings.HasPrefix(pe.Code, "08"): // connection exception
			return Unknown
		}
		return Permanent
	}
	var ce *ConnectError
	var pce *pgconn.ConnectError
	if errors.As(err, &ce) || errors.As(err, &pce) || pgconn.SafeToRetry(err) {
		return Safe
	}
	var le *LostError
	if errors.As(err, &le) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return Unknown
	}
	return Permanent
}

// Transient reports whether err may go away by itself (Safe or Unknown):
// what a writer whose every operation can run twice retries.
func Transient(err error) bool { return Classify(err) != Permanent }

// ConnectError marks a failure to get a connection: nothing was sent.
type ConnectError struct{ Err error }

func (e *ConnectError) Error() string { return e.Err.Error() }
func (e *ConnectError) Unwrap() error { return e.Err }

// LostError marks a failure after which the connection was found closed
// (or could not be made ready): the outcome of the request is unknown.
type LostError struct{ Err error }

func (e *LostError) Error() string { return e.Err.Error() }
func (e *LostError) Unwrap() error { return e.Err }

// SchemaName is what a schema name given in options must look like.
var SchemaName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ParseConfig parses url (pgxpool.ParseConfig, which takes the pool_*
// parameters out of it) and applies what every connection of a driver
// shares: search_path (schema, if set), application_name (app, unless the
// URL names one) and a connect timeout (unless the URL sets one).
func ParseConfig(url, schema, app string, connectTimeout time.Duration) (*pgxpool.Config, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg := pcfg.ConnConfig
	if schema != "" {
		cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = app
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	return pcfg, nil
}

// Pool settings beyond the connection cap. pgxpool dials lazily (MinConns
// is 0), pings a connection idle for over a second before handing it out
// and destroys one that comes back closed, busy or inside a transaction.
const (
	maxConnLifetime   = time.Hour
	maxConnIdleTime   = 10 * time.Minute
	healthCheckPeriod = time.Minute
	pingTimeout       = 5 * time.Second
)

// NewPool creates a pool of up to maxConns connections (0 keeps the cap
// the URL set); no connection is made yet. afterConnect, if set, prepares
// each new connection.
func NewPool(ctx context.Context, cfg *pgxpool.Config, maxConns int32, afterConnect func(*pgx.Conn)) (*pgxpool.Pool, error) {
	cfg = cfg.Copy()
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.MinConns, cfg.MinIdleConns = 0, 0
	cfg.MaxConnLifetime = maxConnLifetime
	cfg.MaxConnIdleTime = maxConnIdleTime
	cfg.HealthCheckPeriod = healthCheckPeriod
	cfg.PingTimeout = pingTimeout
	if afterConnect != nil {
		cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
			afterConnect(c)
			return nil
		}
	}
	return pgxpool.NewWithConfig(ctx, cfg)
}

// CloseConn closes c, waiting at most a second for the server.
func CloseConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.Close(ctx)
}
