package engine

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/clocktest"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/publish"
	"github.com/longhook/longhook/internal/secretbox"
	"github.com/longhook/longhook/internal/store/sqlite"
	"github.com/longhook/longhook/webhook"
)

// bundle is the fixture of an engine test: a real SQLite store, a fake
// clock, a publisher and a running engine.
type bundle struct {
	t       *testing.T
	store   *sqlite.Store
	clock   *clocktest.Clock
	box     *secretbox.Box
	pub     *publish.Publisher
	engine  *Engine
	cfg     Config // the engine's, for restart
	project string
	cancel  context.CancelFunc
	done    chan error
}

type setupOpts struct {
	attemptTimeout time.Duration
	perDest        int
	perDestMax     int
	workers        int
	dynamic        Signer
	lease          time.Duration
	queueBytes     int64
	softStop       time.Duration // default 5 s
	tls            *tls.Config   // the sender's TLS configuration
	// direct makes the publisher hand deliveries to the engine in memory,
	// as `serve` always does.
	direct       bool
	metrics      *Metrics
	metricsPrune time.Duration
	poll         time.Duration // the engine's safety poll (default 1 s)
	// realTime runs the engine and the publisher on the system clock (the
	// bundle's fake clock then drives nothing), with retry delays divided
	// by timeScale as --time-scale does.
	realTime  bool
	timeScale float64
}

func setup(t *testing.T, o setupOpts) *bundle {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir()+"/longhook.db")
	if err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.New(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	clock := clocktest.New(time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC))
	cat, _ := core.NewCatalog()
	b := &bundle{t: t, store: st, clock: clock, box: box, project: core.NewID()}
	if err := st.CreateProject(ctx, core.Project{ID: b.project, Name: "p", CreateTime: clock.Now()}); err != nil {
		t.Fatal(err)
	}
	var clk core.Clock = clock
	if o.realTime {
		clk = core.SystemClock{}
	}
	b.pub = publish.New(publish.Config{Store: st, Catalog: cat, Clock: clk, Policy: core.AddressPolicy{Dev: true}})
	if o.attemptTimeout == 0 {
		o.attemptTimeout = 2 * time.Second
	}
	b.cfg = Config{
		Store: st, Cipher: box, Clock: clk, Retry: core.RetryPolicy{Scale: o.timeScale},
		Sender:         NewSender(SenderConfig{Policy: core.AddressPolicy{Dev: true}, AttemptTimeout: o.attemptTimeout, TLS: o.tls}),
		Rand:           func() float64 { return 0.5 }, // no jitter: exact schedule
		PerDestination: o.perDest, PerDestinationMax: o.perDestMax, Workers: o.workers, Dynamic: o.dynamic,
		SoftStop: cmp.Or(o.softStop, 5*time.Second), Logger: testLogger(t), Lease: o.lease, QueueBytes: o.queueBytes,
		Metrics: o.metrics, MetricsPrune: o.metricsPrune, PollInterval: o.poll,
	}
	b.engine = New(b.cfg)
	if o.direct {
		b.pub = publish.New(publish.Config{Store: st, Catalog: cat, Clock: clk, Direct: b.engine,
			Policy: core.AddressPolicy{Dev: true}})
	}
	b.run()
	t.Cleanup(func() {
		b.stop()
		st.Close()
	})
	return b
}

// run runs b.engine until stop.
func (b *bundle) run() {
	runCtx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	b.done = make(chan error, 1)
	go func() { b.done <- b.engine.Run(runCtx) }()
}

// restart stops the engine and runs a new one on the same store, as a
// restarted `serve` does: a new lease owner, a new sender, nothing held.
// (The publisher still hands direct-path work to the old engine.)
func (b *bundle) restart() *bundle {
	b.stop()
	cfg := b.cfg
	cfg.Sender = NewSender(cfg.Sender.cfg)
	b.engine = New(cfg)
	b.run()
	return b
}

func (b *bundle) stop() {
	if b.cancel != nil {
		b.cancel()
		if err := <-b.done; err != nil {
			b.t.Errorf("engine.Run: %v", err)
		}
		b.cancel = nil
	}
}

// webhook creates an enabled webhook for uri subscribed to batch.succeeded
// and returns it with its plaintext secret.
func (b *bundle) webhook(uri string) (*core.Webhook, string) {
	b.t.Helper()
	secret, _ := webhook.NewSecret()
	sealed, err := b.box.Seal([]byte(secret))
	if err != nil {
		b.t.Fatal(err)
	}
	now := b.clock.Now()
	w := &core.Webhook{ID: core.NewID(), ProjectID: b.project, URI: uri, SubscribedEvents: []string{"batch.succeeded"},
		State: core.WebhookEnabled, CreateTime: now, UpdateTime: now,
		Secrets: []core.SigningSecret{{ID: core.NewID(), Sealed: sealed, Hint: secret[len(secret)-4:], CreateTime: now}}}
	if err := b.store.CreateWebhook(context.Background(), w); err != nil {
		b.t.Fatal(err)
	}
	return w, secret
}

func (b *bundle) publish(data string) *core.Event {
	b.t.Helper()
	res, err := b.pub.Publish(context.Background(), b.project, []publish.Input{{Type: "batch.succeeded", Data: json.RawMessage(data)}})
	if err != nil {
		b.t.Fatal(err)
	}
	return res[0].Event
}

// deliveryOf returns the single delivery of the project's webhook.
func (b *bundle) deliveries(webhookID string) []*core.Delivery {
	b.t.Helper()
	ds, err := b.store.ListDeliveries(context.Background(), core.ListDeliveriesParams{ProjectID: b.project, WebhookID: webhookID, Limit: 1000})
	if err != nil {
		b.t.Fatal(err)
	}
	return ds
}

// waitLimit is how long a test waits for the engine before it gives up.
// It only turns a hang into a failure: it is no measure of speed. Under
// load (two cores shared with other builds, the race detector, fsyncs
// queued behind other databases) the 32 deliveries of
// TestDirectPathBoundedByBytes, one at a time, took 3 s (median of 85
// runs) and up to over 10 s: a 10 s limit failed a correct engine.
const waitLimit = time.Minute

// waitFor polls cond until it holds or waitLimit passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// drive runs a delivery through its schedule: after each attempt it moves
// the fake clock to the next attempt time, until the delivery is final. It
// returns the attempts.
func (b *bundle) drive(id string) (*core.Delivery, []core.Attempt) {
	b.t.Helper()
	ctx := context.Background()
	seen := 0
	for range 100 {
		var d *core.Delivery
		var as []core.Attempt
		waitFor(b.t, "attempt "+itoa(seen+1), func() bool {
			var err error
			d, as, err = b.store.GetDelivery(ctx, b.project, id)
			if err != nil {
				b.t.Fatal(err)
			}
			// Attempts and the delivery's new state commit together.
			return len(as) > seen
		})
		seen = len(as)
		if d.Status != core.DeliveryPending {
			return d, as
		}
		b.clock.Set(d.NextAttemptTime)
		// The engine may have armed its timer just before the clock moved;
		// nudge past its poll interval until the attempt happens.
		deadline := time.Now().Add(waitLimit)
		for i := 0; ; i++ {
			_, as2, _ := b.store.GetDelivery(ctx, b.project, id)
			if len(as2) > seen {
				break
			}
			if i > 0 && i%25 == 0 {
				b.clock.Advance(time.Second)
			}
			if time.Now().After(deadline) {
				b.t.Fatalf("attempt %d never came", seen+1)
			}
			time.Sleep(time.Millisecond)
		}
	}
	b.t.Fatal("delivery never finished")
	return nil, nil
}

func itoa(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }

// recorder is a receiver that answers with a fixed handler and records the
// requests it got.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
	got  chan recorded
	srv  *httptest.Server
}

type recorded struct {
	header http.Header
	body   []byte
}

func newRecorder(t *testing.T, h http.HandlerFunc) *recorder {
	r := &recorder{got: make(chan recorded, 10000)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		rec := recorded{header: req.Header.Clone(), body: body}
		r.mu.Lock()
		r.reqs = append(r.reqs, rec)
		r.mu.Unlock()
		r.got <- rec
		if h != nil {
			h(w, req)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("LONGHOOK_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitsOnClock waits until the engine can do nothing more before the fake
// clock moves: its claim loop waits with no wake-up pending, every result
// is written, and every attempt it holds waits for its rate-limit turn
// (the clock's only timers are the loop's and those turns'). A test that
// advances the clock only then sees the engine's own lateness, however
// slowly the machine runs; the deadline only turns a hang into a failure.
func (b *bundle) waitsOnClock() {
	b.t.Helper()
	e := b.engine
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	reply := make(chan bool, 1)
	for {
		q := e.queued.Load()
		if e.written.Load() == q {
			select {
			case e.probe <- reply: // blocks while the loop is busy
			case <-deadline.C:
				b.t.Fatal("the engine's claim loop never waited")
			}
			// Nothing was queued or written since q: no attempt ended
			// and no write woke the loop, which still waits on its timer.
			if <-reply && e.queued.Load() == q && e.written.Load() == q {
				e.mu.Lock()
				waiting := b.clock.Pending() == e.running+1
				e.mu.Unlock()
				if waiting {
					return
				}
			}
		}
		select {
		case <-deadline.C:
			b.t.Fatal("the engine never came to wait on the clock")
		default:
		}
		time.Sleep(time.Millisecond) // polls, as waitFor does
	}
}
