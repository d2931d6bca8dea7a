package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/longhook/longhook/internal/gateway/inbox/inboxtest"
	"github.com/longhook/longhook/webhook"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(crashChild())
	}
	goleak.VerifyTestMain(m,
		// The only exception: the Pub/Sub client links OpenCensus, whose
		// view worker starts at init and never ends. (Idle keep-alive
		// connections, the NATS flusher and database/sql's opener all end
		// within goleak's retries once the tests close what they opened.)
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

// testBody is a typical event envelope.
func testBody(i int) []byte {
	return fmt.Appendf(nil, `{"type":"batch.succeeded","version":"v1","timestamp":"2026-05-05T12:00:00Z","data":{"id":"batches/%d"}}`, i)
}

func mustSecret(t testing.TB) (string, webhook.Secret) {
	t.Helper()
	text, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	s, err := webhook.ParseSecret(text)
	if err != nil {
		t.Fatal(err)
	}
	return text, s
}

// post sends a webhook signed with secret at ts and returns the status.
func post(t testing.TB, client *http.Client, url string, secret webhook.Secret, id string, ts time.Time, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderID, id)
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(secret, id, ts, body))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// testGateway is a gateway served by httptest, running until cleanup.
type testGateway struct {
	*Gateway
	srv *httptest.Server
}

func startGateway(t testing.TB, cfg Config, opts ...Option) *testGateway {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if testing.Verbose() {
		opts = append([]Option{WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))}, opts...)
	}
	g, err := NewGateway(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		g.Drain()
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if err := g.Close(); err != nil {
			t.Error(err)
		}
	})
	return &testGateway{Gateway: g, srv: srv}
}

// recorder is an HTTP sink target that records what it receives and can
// be told to fail.
type recorder struct {
	srv     *httptest.Server
	mu      sync.Mutex
	ids     map[string]int // webhook-id → deliveries
	headers []http.Header
	bodies  map[string][]byte
	fail    atomic.Bool
	delay   atomic.Int64 // nanoseconds each request takes: a slow sink
	calls   atomic.Int64
}

func newRecorder(t testing.TB) *recorder {
	r := &recorder{ids: map[string]int{}, bodies: map[string][]byte{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.calls.Add(1)
		body, _ := io.ReadAll(req.Body)
		if d := r.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d)) // simulates a slow destination
		}
		if r.fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		r.mu.Lock()
		id := req.Header.Get(webhook.HeaderID)
		if id == "" {
			id = req.Header.Get(HeaderEventID) // a preset source
		}
		r.ids[id]++
		r.headers = append(r.headers, req.Header.Clone())
		r.bodies[id] = body
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids)
}

func (r *recorder) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.ids))
	for k, v := range r.ids {
		out[k] = v
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	inboxtest.WaitFor(t, within, what, cond)
}
