package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// received is one request a receiver got.
type received struct {
	Header http.Header
	Body   []byte // raw, as sent
}

// envelope decodes the body as an event envelope.
func (r received) envelope(t testing.TB) eventEnvelope {
	t.Helper()
	var e eventEnvelope
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("body is not an event envelope: %v: %s", err, r.Body)
	}
	return e
}

// eventEnvelope is a delivery body.
type eventEnvelope struct {
	Type      string          `json:"type"`
	Version   string          `json:"version"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// receiver is an httptest server that records every request and signals
// each arrival. Its answer comes from status (200 when nil).
type receiver struct {
	srv    *httptest.Server
	status func(n int, r received) int // n counts requests from 1

	mu     sync.Mutex
	reqs   []received
	notify chan struct{} // capacity 1: "something arrived"
}

// newReceiver starts a recording receiver, closed when the test ends.
func newReceiver(t testing.TB, status func(n int, r received) int) *receiver {
	r := &receiver{status: status, notify: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serveHTTP))
	t.Cleanup(r.srv.Close)
	return r
}

// URL returns the receiver's URL with path appended.
func (r *receiver) URL(path string) string { return r.srv.URL + path }

// serveHTTP records the request, answers with status, then signals.
func (r *receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rec := received{Header: req.Header.Clone(), Body: body}
	rec.Header.Set("x-e2e-path", req.URL.Path)
	r.mu.Lock()
	r.reqs = append(r.reqs, rec)
	n := len(r.reqs)
	r.mu.Unlock()
	code := http.StatusOK
	if r.status != nil {
		code = r.status(n, rec)
	}
	w.WriteHeader(code)
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// requests returns a copy of what has arrived so far.
func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

// waitFor waits until pred holds for the requests so far and returns them;
// it ends the test after timeout.
func (r *receiver) waitFor(t testing.TB, timeout time.Duration, what string, pred func([]received) bool) []received {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		if reqs := r.requests(); pred(reqs) {
			return reqs
		}
		select {
		case <-r.notify:
		case <-timer.C:
			reqs := r.requests()
			if pred(reqs) {
				return reqs
			}
			t.Fatalf("receiver: %s: not within %v (%d requests arrived)", what, timeout, len(reqs))
		}
	}
}

// waitN waits for at least n requests and returns the n-th (1-based).
func (r *receiver) waitN(t testing.TB, n int, timeout time.Duration) received {
	t.Helper()
	reqs := r.waitFor(t, timeout, "request #"+strconv.Itoa(n), func(rs []received) bool { return len(rs) >= n })
	return reqs[n-1]
}
