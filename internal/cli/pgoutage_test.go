//go:build linux

package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/pgtest"
)

// TestServePostgresOutage runs serve on PostgreSQL through a TCP proxy
// with publishers and a receiver, and cuts the proxy mid-run (every
// connection dropped, new ones refused for a few seconds, as in a
// database restart or failover), then restores it. Publishes during the
// outage get 503 UNAVAILABLE, never a 2xx; serve recovers by itself (no
// restart); every event whose publish got a 2xx is delivered.
func TestServePostgresOutage(t *testing.T) {
	base := pgtest.URL(t)
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	dbURL, drop, err := tempPostgresDB(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	proxy := pgtest.NewProxy(t, dbURL)

	rcv := &seqReceiver{got: map[int]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := &http.Server{Handler: rcv}
	go rs.Serve(ln)
	t.Cleanup(func() { _ = rs.Close() })

	const key = "pgout-key-0123456789abcdef0123456789abcdef"
	master := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{4}, 32))
	env := Env{Getenv: func(k string) string {
		return map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": key, "LONGHOOK_MASTER_KEY": master}[k]
	}, Stdout: io.Discard, Stderr: io.Discard}
	srv, err := NewServer(ctx, ServeConfig{Addr: "127.0.0.1:0", DataDir: t.TempDir(), DatabaseURL: proxy.URL, Dev: true,
		TimeScale: 600, SoftStop: time.Second, Lease: 20 * time.Second, Migrate: true}, env, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	client := &http.Client{Timeout: 60 * time.Second}
	post := func(path string, body any) (int, []byte, error) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1beta"+path, bytes.NewReader(b))
		req.Header.Set("x-goog-api-key", key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, rb, nil
	}
	if code, b, err := post("/webhooks", map[string]any{"uri": "http://" + ln.Addr().String() + "/h", "subscribed_events": []string{"batch.succeeded"}}); code != 200 {
		t.Fatalf("create webhook: %d %s %v", code, b, err)
	}

	// Publishers: every 2xx is recorded as accepted; anything else but a
	// 503 UNAVAILABLE (or a client-side error during the outage) fails.
	var mu sync.Mutex
	var accepted []int
	var cut atomic.Bool
	var refused, okDuringCut atomic.Int64
	var bad []string
	var seq atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := int(seq.Add(1))
				wasCut := cut.Load()
				code, b, err := post("/events", map[string]any{"type": "batch.succeeded", "data": map[string]any{"seq": n}})
				switch {
				case err != nil:
					refused.Add(1)
				case code/100 == 2:
					if wasCut && cut.Load() {
						okDuringCut.Add(1)
					}
					mu.Lock()
					accepted = append(accepted, n)
					mu.Unlock()
				case code == http.StatusServiceUnavailable && bytes.Contains(b, []byte(`"UNAVAILABLE"`)):
					refused.Add(1)
				default:
					mu.Lock()
					bad = append(bad, fmt.Sprintf("%d %s", code, b))
					mu.Unlock()
				}
			}
		})
	}
	nAccepted := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted)
	}
	poll := func(within time.Duration, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				mu.Lock()
				t.Logf("bad answers: %d %q", len(bad), bad)
				mu.Unlock()
				t.Fatalf("timed out waiting for %s (accepted %d, refused %d)", what, nAccepted(), refused.Load())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	start := time.Now()
	poll(60*time.Second, "100 accepted publishes", func() bool { return nAccepted() >= 100 })

	// The outage: every connection dropped, new ones refused, for at
	// least 3 s and until publishes have been refused (the store retries
	// a failing statement for up to 10 s before it gives up).
	// cut is set only once the proxy has cut (and cleared before it is
	// restored), so a publish that saw it set both before sending and
	// after its answer was sent and answered entirely inside the outage.
	proxy.Cut()
	cut.Store(true)
	outage := time.Now()
	before := refused.Load()
	poll(60*time.Second, "publishes refused during the outage", func() bool {
		return refused.Load() >= before+4 && time.Since(outage) >= 3*time.Second
	})
	t.Logf("outage of %s: %d publishes refused", time.Since(outage).Round(time.Millisecond), refused.Load()-before)
	inOutage := nAccepted()
	cut.Store(false)
	proxy.Restore()
	poll(90*time.Second, "publishes accepted again without a restart", func() bool { return nAccepted() >= inOutage+100 })
	close(stop)
	wg.Wait()

	if n := okDuringCut.Load(); n > 0 {
		t.Errorf("%d publishes sent and answered while the database was cut off got a 2xx", n)
	}
	if len(bad) > 0 {
		t.Fatalf("%d publishes got neither a 2xx nor 503 UNAVAILABLE, e.g. %s", len(bad), bad[0])
	}
	poll(120*time.Second, "every accepted event delivered", func() bool { return rcv.missing(accepted) == 0 })
	t.Logf("run took %s", time.Since(start).Round(time.Millisecond))
	t.Logf("%d events accepted, %d refused or failed during the outage, all accepted delivered", len(accepted), refused.Load()-before)
}
