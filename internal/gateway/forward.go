package gateway

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// pollInterval bounds how long a forwarder sleeps without a wake-up:
	// it catches retries whose time has come and any missed wake-up.
	pollInterval = time.Second
	// cursorDelay is how long a forwarder may hold back persisting its
	// cursor, so one cursor write covers many forwards. After a crash
	// this much is forwarded again, plus every event forwarded since the
	// oldest attempt then in flight started (the cursor trails it).
	cursorDelay = 50 * time.Millisecond
)

// A forwarder moves one sink's events from the inbox log to the sink,
// with up to Concurrency attempts in flight. Each sink has its own, so a
// slow or failing sink delays only itself; intake never waits for it.
//
// First attempts read the log after the forwarder's position. The
// persisted cursor trails the lowest first attempt still in flight: every
// event at or below it was taken by the sink or recorded as a retry
// (AddRetry commits before the cursor can pass the event). Retries are
// read from the retry table when due. Nothing is leased in the store:
// after a crash nothing is in flight and reading resumes at the cursor.
type forwarder struct {
	id     string // sinkID(source, name)
	source string
	cfg    SinkConfig
	sink   Sink
	inbox  Inbox
	log    *slog.Logger
	m      *sinkMetrics
	now    func() time.Time
	// resign, when set, signs an event's stored header again at the
	// attempt when it is old (source.resignOld): a destination that verifies the signature
	// refuses one older than its tolerance, and a retry after an outage
	// is older than that.
	resign func(h http.Header, body []byte, now time.Time) (http.Header, bool)

	persisted atomic.Int64                 // last cursor written, read by the sweeper
	lastErr   atomic.Pointer[forwardError] // the latest failed forward, for the console

	mu        sync.Mutex
	read      int64              // highest seq read from the log
	first     map[int64]struct{} // first attempts in flight
	retrying  map[int64]struct{} // retries in flight
	dirty     bool               // cursor may have moved since persisted
	lastFlush time.Time
	wakeAt    time.Time // earliest known retry time, zero if none
	replays   int       // counts replay calls, so a read racing one is discarded
	freed     chan struct{}
	limit     *sinkLimiter // nil without a rate limit
}

func newForwarder(source, name string, cfg SinkConfig, sink Sink, inbox Inbox, log *slog.Logger, m *metrics, now func() time.Time) *forwarder {
	return &forwarder{
		id: sinkID(source, name), source: source, cfg: cfg, sink: sink, inbox: inbox, log: log, m: m.forSink(sinkID(source, name)), now: now,
		first: map[int64]struct{}{}, retrying: map[int64]struct{}{},
		freed: make(chan struct{}, 1), limit: newSinkLimiter(cfg.RateLimit),
	}
}

// start loads the cursor; a new sink starts at the end of the log, so it
// receives events accepted from now on.
func (f *forwarder) start(ctx context.Context) error {
	seq, ok, err := f.inbox.Cursor(ctx, f.id)
	if err != nil {
		return err
	}
	if !ok {
		if seq, err = f.inbox.LastSeq(ctx); err != nil {
			return err
		}
		if err := f.inbox.SetCursor(ctx, f.id, seq); err != nil {
			return err
		}
	}
	f.read = seq
	f.persisted.Store(seq)
	return nil
}

// run forwards until ctx is done (the soft stop), then waits for the
// attempts in flight and persists the cursor; hard is cancelled by the
// caller when the shutdown timeout passes, which aborts those attempts.
func (f *forwarder) run(ctx, hard context.Context) {
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		f.flush(context.WithoutCancel(ctx), true)
	}()
	timer := time.NewTimer(pollInterval)
	defer timer.Stop()
	lastRetryPoll := time.Time{}
	moreRetries := false // the last retry read was full: more may be due
	dispatch := func(fw Forward, retry bool) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.attempt(hard, fw, retry)
		}()
	}
	for {
		changed := f.inbox.Changed() // before reading, so no commit is missed
		free := f.free()
		caughtUp := true
		if free > 0 {
			evs, got := f.readNew(ctx, free)
			for _, e := range evs {
				dispatch(Forward{Event: e, Sink: f.id}, false)
			}
			free -= got
			caughtUp = free > 0
		}
		if now := f.now(); free > 0 && (moreRetries || f.retriesDue(now, lastRetryPoll)) {
			lastRetryPoll = now
			var due []Forward
			due, moreRetries = f.takeDueRetries(ctx, now, free)
			for _, fw := range due {
				dispatch(fw, true)
			}
		}
		f.flush(ctx, false)
		if !caughtUp {
			changed = nil // more to read as soon as a slot frees
		}
		timer.Reset(f.sleep())
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-f.freed:
		case <-timer.C:
		}
	}
}

// readNew reads up to free events after the read cursor, moves the cursor
// past them and returns those to forward: not those still in flight. got
// is how many slots the read used; all of them when a replay moved
// reading back during the read, so that the caller reads again at once.
func (f *forwarder) readNew(ctx context.Context, free int) (evs []Event, got int) {
	f.mu.Lock()
	read, gen := f.read, f.replays
	f.mu.Unlock()
	evs, next, err := f.inbox.After(ctx, f.source, read, free)
	if err != nil && ctx.Err() == nil {
		f.log.LogAttrs(ctx, slog.LevelError, "gateway.forward.read", slog.String("sink", f.id), slog.Any("error", err))
	}
	got = len(evs)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.replays != gen {
		// A replay moved reading back during the read: what was
		// read is read again from there.
		evs, got, err = nil, free, errReplayed
	}
	n := 0
	for _, e := range evs {
		if _, busy := f.first[e.Seq]; busy {
			continue // a replay moved reading back over an event still in flight
		}
		f.first[e.Seq] = struct{}{}
		evs[n] = e
		n++
	}
	if err == nil && next > f.read {
		f.read, f.dirty = next, true
	}
	return evs[:n], got
}

// takeDueRetries reads up to free retries due at now, not already being
// retried, and marks them retrying; more is set when the read was full
// (more may be due).
func (f *forwarder) takeDueRetries(ctx context.Context, now time.Time, free int) (due []Forward, more bool) {
	due, err := f.inbox.DueRetries(ctx, f.id, now, free, f.isRetrying)
	more = len(due) == free
	if err != nil && ctx.Err() == nil {
		f.log.LogAttrs(ctx, slog.LevelError, "gateway.forward.retries", slog.String("sink", f.id), slog.Any("error", err))
	}
	f.mu.Lock()
	for _, fw := range due {
		f.retrying[fw.Seq] = struct{}{}
	}
	f.mu.Unlock()
	return due, more
}

// replay sends the source's events after from again: reading moves back
// to from (never forward) and the persisted cursor follows at the next
// flush, so a replay interrupted by a crash resumes from where it got to.
// It reports whether reading moved.
func (f *forwarder) replay(from int64) bool {
	f.mu.Lock()
	moved := from < f.read
	if moved {
		f.read, f.dirty = from, true
		f.replays++
	}
	f.mu.Unlock()
	select {
	case f.freed <- struct{}{}: // wake the loop
	default:
	}
	return moved
}

// errReplayed marks a log read discarded because a replay moved reading
// back meanwhile (not logged).
var errReplayed = errors.New("gateway: read discarded by a replay")

func (f *forwarder) free() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg.Concurrency - len(f.first) - len(f.retrying)
}

// retriesDue reports whether to look for due retries: at the earliest
// known retry time, and at least every pollInterval.
func (f *forwarder) retriesDue(now, last time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.wakeAt.IsZero() && !now.Before(f.wakeAt) {
		f.wakeAt = time.Time{}
		return true
	}
	return now.Sub(last) >= pollInterval
}

// sleep is how long to wait when nothing wakes the forwarder earlier.
func (f *forwarder) sleep() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := pollInterval
	if f.dirty {
		d = cursorDelay
	}
	if !f.wakeAt.IsZero() {
		d = min(d, max(f.wakeAt.Sub(f.now()), time.Millisecond))
	}
	return d
}

func (f *forwarder) isRetrying(seq int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.retrying[seq]
	return ok
}

// cursor is the position every event at or below which is settled.
func (f *forwarder) cursor() int64 {
	c := f.read
	for seq := range f.first {
		c = min(c, seq-1)
	}
	return c
}

// flush persists the cursor if it moved, at most every cursorDelay
// unless force is set.
func (f *forwarder) flush(ctx context.Context, force bool) {
	f.mu.Lock()
	if !f.dirty || (!force && f.now().Sub(f.lastFlush) < cursorDelay) {
		f.mu.Unlock()
		return
	}
	c := f.cursor() // O(in flight): computed at most every cursorDelay
	if c == f.persisted.Load() {
		f.dirty = false
		f.mu.Unlock()
		return
	}
	f.lastFlush = f.now()
	f.mu.Unlock()
	if err := f.inbox.SetCursor(ctx, f.id, c); err != nil {
		if ctx.Err() == nil {
			f.log.LogAttrs(ctx, slog.LevelError, "gateway.forward.cursor", slog.String("sink", f.id), slog.Any("error", err))
		}
		return
	}
	f.persisted.Store(c)
	f.mu.Lock()
	f.dirty = f.cursor() != c
	f.mu.Unlock()
}

// attempt sends one event and records the outcome. Records are written
// even during shutdown (WithoutCancel): an outcome lost here only means
// one more, harmless, attempt after restart.
func (f *forwarder) attempt(ctx context.Context, fw Forward, retry bool) {
	f.limit.wait(ctx)
	start := f.now()
	err := f.send(ctx, &fw)
	elapsed := f.now().Sub(start)
	wctx := context.WithoutCancel(ctx)
	outcome, level := "ok", slog.LevelDebug
	var recErr error
	p := RetryParams{Sink: f.id, Seq: fw.Seq, Attempts: fw.Attempts + 1}
	if err == nil {
		f.m.ok.Inc()
		if retry {
			p.Done = true
			recErr = f.inbox.UpdateRetry(wctx, p)
		}
	} else {
		p.NextAt = f.now().Add(backoff(f.cfg.Retry, p.Attempts))
		p.Dead = p.NextAt.Sub(fw.ReceivedAt) > f.cfg.Retry.MaxAge
		p.LastError = truncate(err.Error(), 512)
		f.lastErr.Store(&forwardError{At: start, Seq: fw.Seq, Err: p.LastError})
		outcome, level = "retry", slog.LevelWarn
		if p.Dead {
			outcome, level = "dead", slog.LevelError
			f.m.dead.Inc()
		} else {
			f.m.retry.Inc()
		}
		if retry {
			recErr = f.inbox.UpdateRetry(wctx, p)
		} else {
			recErr = f.addRetry(ctx, p)
		}
	}
	f.m.seconds.Observe(elapsed.Seconds())
	if recErr != nil {
		level = slog.LevelError
	}
	if f.log.Enabled(wctx, level) {
		attrs := []slog.Attr{
			slog.String("sink", f.id),
			slog.String("webhook_id", fw.WebhookID),
			slog.Int64("seq", fw.Seq),
			slog.Int("attempt", p.Attempts),
			slog.Duration("duration", elapsed),
			slog.String("outcome", outcome),
		}
		if err != nil {
			attrs = append(attrs, slog.Any("error", err), slog.Time("next_attempt", p.NextAt))
		}
		if recErr != nil {
			attrs = append(attrs, slog.Any("record_error", recErr))
		}
		f.log.LogAttrs(wctx, level, "gateway.forward", attrs...)
	}

	f.mu.Lock()
	if retry {
		delete(f.retrying, fw.Seq)
	} else if recErr == nil {
		// Settled: taken by the sink or durably queued for retry.
		delete(f.first, fw.Seq)
		f.dirty = true
	}
	// A first attempt whose retry record failed stays in f.first, so the
	// cursor never passes it; it is sent again after a restart.
	if outcome == "retry" && (f.wakeAt.IsZero() || p.NextAt.Before(f.wakeAt)) {
		f.wakeAt = p.NextAt
	}
	f.mu.Unlock()
	select {
	case f.freed <- struct{}{}:
	default:
	}
}

// addRetry records a failed first attempt, trying again while the store
// fails (the cursor must not pass the event until it is recorded) until
// ctx is cancelled or the inbox is closed.
func (f *forwarder) addRetry(ctx context.Context, p RetryParams) error {
	wait := 100 * time.Millisecond
	for {
		err := f.inbox.AddRetry(context.WithoutCancel(ctx), p)
		if err == nil || errors.Is(err, ErrClosed) {
			return err
		}
		f.log.LogAttrs(ctx, slog.LevelError, "gateway.forward.record", slog.String("sink", f.id),
			slog.Int64("seq", p.Seq), slog.Any("error", err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// backoff is the wait before attempt n+1 after n failures: Initial·2^(n-1)
// capped at Max, with ±20 % jitter so a recovering sink is not hit by a
// synchronised wave.
func backoff(r RetryConfig, failures int) time.Duration {
	d := r.Initial
	for i := 1; i < failures && d < r.Max; i++ {
		d *= 2
	}
	d = min(d, r.Max)
	jitter := 0.8 + 0.4*rand.Float64()
	return time.Duration(float64(d) * jitter)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
