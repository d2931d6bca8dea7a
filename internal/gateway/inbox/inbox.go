// Package inbox is the gateway's durable store: the Inbox interface, its
// types, and what its drivers (inbox/sqlite, inbox/postgres) share — the
// group-commit writer's settings, the in-memory tail of recent events, the
// Changed signal and the header encoding.
package inbox

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// ErrClosed is returned by an Inbox after Close.
var ErrClosed = errors.New("gateway: inbox closed")

// An Inbox is the gateway's durable store: an append-only log of the
// events it accepted (which doubles as the dedupe index and as the listen
// log), a cursor per sink into that log, and the forwards that failed and
// wait for a retry. Its drivers are inbox/sqlite (the default) and
// inbox/postgres; both pass inboxtest.Run. The interface is the gateway's
// own: the sender's store (core.Store) is a different thing.
//
// A sink's cursor promises that every event of its source at or below it
// was either taken by the sink or recorded for retry. Forwarders advance
// it lazily, so after a crash a few events past it are sent again (which
// at-least-once allows and the Redis and NATS sinks absorb).
//
// Only one gateway process may use an inbox at a time: in-flight forwards
// are tracked in memory.
type Inbox interface {
	// Accept appends an event unless (Source, WebhookID) is already
	// stored. It returns only once the write is durable. A duplicate
	// changes nothing and returns Duplicate true with the original Seq.
	Accept(ctx context.Context, p AcceptParams) (AcceptResult, error)
	// After returns up to limit events of source with Seq > after, in
	// order: what forwarders and listen streams read. next is the
	// position the read reached: the last event's Seq when limit events
	// are returned, else a position at or past every event committed
	// when the read began, so a reader of a quiet source moves on too.
	After(ctx context.Context, source string, after int64, limit int) (evs []Event, next int64, err error)
	// Since finds where a replay of source from time t starts: from is
	// the position just before the first event of source received at or
	// after t (After(source, from, …) reads it first) and n counts the
	// events of source after from. With no such event from is LastSeq
	// and n is 0. Positions follow commit order, which can differ from
	// receive order by the few events in flight together, so events
	// received just before t may be among the n. It scans the source's
	// events: it serves an operator's replay, not the hot path.
	Since(ctx context.Context, source string, t time.Time) (from, n int64, err error)
	// LastSeq returns the highest Seq of all events (0 if none).
	LastSeq(ctx context.Context) (int64, error)
	// Cursor returns a sink's persisted cursor; ok is false if the sink
	// has none yet.
	Cursor(ctx context.Context, sink string) (seq int64, ok bool, err error)
	// SetCursor persists a sink's cursor.
	SetCursor(ctx context.Context, sink string, seq int64) error
	// AddRetry records a failed first attempt, to be retried.
	AddRetry(ctx context.Context, p RetryParams) error
	// DueRetries returns up to limit retries of sink whose next attempt is
	// at or before now, oldest first, skipping those for which skip is true.
	DueRetries(ctx context.Context, sink string, now time.Time, limit int, skip func(seq int64) bool) ([]Forward, error)
	// UpdateRetry records the outcome of a retry: Done removes it,
	// otherwise the attempt count, next time and error are updated and
	// Dead parks it for good.
	UpdateRetry(ctx context.Context, p RetryParams) error
	// PendingRetries counts retries per sink that are not dead.
	PendingRetries(ctx context.Context) (map[string]int64, error)
	// Sweep deletes up to limit events of source whose dedupe horizon
	// ended before now, whose Seq is at most upto (the lowest cursor of
	// the source's sinks) and that no retry needs. It returns how many.
	Sweep(ctx context.Context, p SweepParams) (int, error)
	// Changed returns a channel closed at the next commit that appended
	// an event, to wake forwarders and listen streams.
	Changed() <-chan struct{}
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Close commits queued writes and closes the store; it is safe to
	// call twice.
	Close() error
}

// AcceptParams is one received, verified event.
type AcceptParams struct {
	Source     string
	WebhookID  string
	Type       string      // event type, "" if unknown
	Header     http.Header // webhook headers to replay downstream
	Body       []byte
	ReceivedAt time.Time
	// ExpireAt ends the dedupe horizon of this webhook-id.
	ExpireAt time.Time
}

// AcceptResult says what Accept did.
type AcceptResult struct {
	Seq       int64 // position in the log
	Duplicate bool
}

// Event is a stored event.
type Event struct {
	Seq        int64
	Source     string
	WebhookID  string
	Type       string
	Header     http.Header
	Body       []byte
	ReceivedAt time.Time
}

// Forward is an event waiting for a retry to one sink.
type Forward struct {
	Event
	Sink     string
	Attempts int // failed attempts so far
}

// RetryParams records a failed forward attempt or a retry's outcome.
type RetryParams struct {
	Sink      string
	Seq       int64
	Attempts  int // failed attempts so far
	NextAt    time.Time
	LastError string
	Dead      bool // give up: keep the record, never retry
	Done      bool // UpdateRetry only: the retry succeeded
}

// SweepParams bounds a sweep of expired events.
type SweepParams struct {
	Now    time.Time
	Source string
	Upto   int64
	Limit  int
}
