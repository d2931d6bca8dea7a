package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// Crash test parameters.
const (
	crashPublishers = 16
	crashBatch      = 50
	crashKills      = 3
	// crashDrain bounds the wait for every accepted event after the last
	// restart: deliveries claimed by a killed process wait out their 60 s
	// lease before another process takes them over.
	crashDrain = 90 * time.Second
)

// crashEvents is LONGHOOK_E2E_CRASH_EVENTS, default 20000.
func crashEvents(t testing.TB) int {
	if v := os.Getenv("LONGHOOK_E2E_CRASH_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < crashBatch {
			t.Fatalf("LONGHOOK_E2E_CRASH_EVENTS=%q: want an integer ≥ %d", v, crashBatch)
		}
		return n
	}
	return 20000
}

// TestCrashSafety (issue 3, docs/contract.md §6): while publishers push events
// as fast as serve accepts them, serve is killed with SIGKILL at random
// moments and restarted on the same SQLite data dir. Every event whose
// publish got a 2xx must still reach the receiver at least once.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	total := crashEvents(t)
	s := startServe(t, withFlags("--time-scale", "60"))
	c := s.client(t)
	rcv := newSeqReceiver(t, total)
	c.createWebhook(t, rcv.srv.URL+"/crash", "batch.succeeded")

	// Jobs: mostly batches of 50, about one job in five a single publish.
	type job struct{ start, n int }
	jobs := make(chan job, total)
	for seq := 0; seq < total; {
		n := min(crashBatch, total-seq)
		if rand.IntN(5) == 0 {
			n = 1
		}
		jobs <- job{seq, n}
		seq += n
	}
	close(jobs)

	accepted := make([]atomic.Bool, total)
	var nAccepted, retries atomic.Int64
	progress := make(chan struct{}, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	publish := func(j job) error {
		for {
			ok, err := publishSeqs(ctx, c, j.start, j.n)
			if err != nil {
				return err
			}
			if ok {
				for seq := j.start; seq < j.start+j.n; seq++ {
					accepted[seq].Store(true)
				}
				nAccepted.Add(int64(j.n))
				select {
				case progress <- struct{}{}:
				default:
				}
				return nil
			}
			retries.Add(1)
			if !core.Sleep(ctx, 10*time.Millisecond) {
				return fmt.Errorf("publish of seq %d..%d not accepted before the deadline", j.start, j.start+j.n-1)
			}
		}
	}
	publishStart := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, crashPublishers)
	for range crashPublishers {
		wg.Go(func() {
			for j := range jobs {
				if err := publish(j); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		})
	}

	// Kill at random points of progress, each a little after the
	// threshold is crossed, and restart at once.
	var thresholds []int64
	for range crashKills {
		thresholds = append(thresholds, int64(total/10+rand.IntN(total*7/10)))
	}
	slices.Sort(thresholds)
	var lastRestart time.Time
	for i, th := range thresholds {
		for nAccepted.Load() < th && ctx.Err() == nil {
			select {
			case <-progress:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		core.Sleep(ctx, time.Duration(rand.IntN(200))*time.Millisecond)
		s.kill9()
		s.restart()
		lastRestart = time.Now()
		t.Logf("kill -9 #%d at %d accepted events (%v into publishing)", i+1, nAccepted.Load(), time.Since(publishStart).Round(time.Millisecond))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if lastRestart.IsZero() {
		t.Fatal("serve was never killed")
	}
	publishTime := time.Since(publishStart)
	if got := nAccepted.Load(); got != int64(total) {
		t.Fatalf("%d of %d events accepted", got, total)
	}

	// Every accepted event arrives at least once.
	deadline := lastRestart.Add(crashDrain)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for len(rcv.missing(accepted)) > 0 && time.Now().Before(deadline) {
		<-tick.C
	}
	drainTime := time.Since(publishStart) - publishTime
	receipts, distinct := rcv.stats()
	t.Logf("%d events published in %v (%d publish retries, %d kills); all delivered %v later; %d receipts, %d distinct, %d duplicates",
		total, publishTime.Round(time.Millisecond), retries.Load(), len(thresholds), drainTime.Round(time.Millisecond),
		receipts, distinct, receipts-distinct)
	if m := rcv.missing(accepted); len(m) > 0 {
		t.Fatalf("%d accepted events never arrived within %v of the last restart; first: %v", len(m), crashDrain, m[:min(len(m), 20)])
	}
}

// publishSeqs publishes events seq start..start+n-1 (one POST /events for
// n == 1, else events:batchPublish). It reports whether serve accepted them
// (2xx with one id per event); transport errors and 5xx mean "not
// accepted, try again"; anything else is an error.
func publishSeqs(ctx context.Context, c *apiClient, start, n int) (bool, error) {
	events := make([]map[string]any, n)
	for i := range n {
		seq := start + i
		events[i] = map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": "batches/crash-" + strconv.Itoa(seq), "seq": seq}}
	}
	return tryPublish(ctx, ctx, c, events)
}

// tryPublish posts events (one POST /events for a single event, else
// events:batchPublish) with reqCtx and reports whether serve accepted them
// (2xx with one id per event). Transport errors, 5xx and 429 mean "not
// accepted, try again" (it returns ctx's error then); anything else is an
// error.
func tryPublish(ctx, reqCtx context.Context, c *apiClient, events []map[string]any) (bool, error) {
	n := len(events)
	var (
		status int
		raw    []byte
		err    error
		ids    []string
	)
	if n == 1 {
		var ev publishedEvent
		status, raw, err = c.do(reqCtx, "POST", "/v1beta/events", events[0], &ev)
		ids = []string{ev.ID}
	} else {
		var resp struct {
			Events []publishedEvent `json:"events"`
		}
		status, raw, err = c.do(reqCtx, "POST", "/v1beta/events:batchPublish", map[string]any{"events": events}, &resp)
		for _, e := range resp.Events {
			ids = append(ids, e.ID)
		}
	}
	switch {
	case err != nil:
		// Refused, reset or cut short: serve is down or was killed
		// mid-request. Not accepted; try again.
		return false, ctx.Err()
	case status/100 == 2:
		if len(ids) != n || slices.Contains(ids, "") {
			return false, fmt.Errorf("publish of %d events answered %d ids: %s", n, len(ids), raw)
		}
		return true, nil
	case status >= 500 || status == http.StatusTooManyRequests:
		return false, nil
	default:
		return false, fmt.Errorf("publish: status %d: %s", status, raw)
	}
}

// seqReceiver counts deliveries per data.seq and always answers 200.
type seqReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	counts []int
	total  int
}

// newSeqReceiver starts a counting receiver for seqs 0..n-1.
func newSeqReceiver(t testing.TB, n int) *seqReceiver {
	r := &seqReceiver{counts: make([]int, n)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body struct {
			Data struct {
				Seq *int `json:"seq"`
			} `json:"data"`
		}
		raw, err := io.ReadAll(req.Body)
		if err == nil {
			err = json.Unmarshal(raw, &body)
		}
		if err != nil || body.Data.Seq == nil || *body.Data.Seq < 0 || *body.Data.Seq >= n {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.counts[*body.Data.Seq]++
		r.total++
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// stats returns the receipts and the distinct seqs received.
func (r *seqReceiver) stats() (receipts, distinct int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.counts {
		if c > 0 {
			distinct++
		}
	}
	return r.total, distinct
}

// missing lists the accepted seqs that have not arrived.
func (r *seqReceiver) missing(accepted []atomic.Bool) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for seq, c := range r.counts {
		if c == 0 && accepted[seq].Load() {
			out = append(out, seq)
		}
	}
	return out
}
