package engine

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// attemptsOf waits until delivery id has at least n attempts recorded and
// returns it with them.
func (b *bundle) attemptsOf(id string, n int) (*core.Delivery, []core.Attempt) {
	b.t.Helper()
	var d *core.Delivery
	var as []core.Attempt
	waitFor(b.t, "attempt "+itoa(n), func() bool {
		var err error
		d, as, err = b.store.GetDelivery(context.Background(), b.project, id)
		if err != nil {
			b.t.Fatal(err)
		}
		return len(as) >= n
	})
	return d, as
}

// retryNow moves the fake clock to d's next attempt, nudging it on by the
// safety poll until attempt n is recorded. The clock moves only while the
// engine waits on it (waitsOnClock), never while an attempt is in flight:
// nudged meanwhile, as it was every 20 ms, it ran on by tens of seconds
// during an attempt on a loaded machine, past the claim's lease and the
// retry's due time, and what the test saw depended on the scheduler.
func (b *bundle) retryNow(d *core.Delivery, n int) (*core.Delivery, []core.Attempt) {
	b.t.Helper()
	b.clock.Set(d.NextAttemptTime)
	deadline := time.Now().Add(waitLimit)
	for {
		b.waitsOnClock()
		d2, as, err := b.store.GetDelivery(context.Background(), b.project, d.ID)
		if err != nil {
			b.t.Fatal(err)
		}
		if len(as) >= n {
			return d2, as
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("attempt %d never came", n)
		}
		b.clock.Advance(time.Second)
	}
}

// faultCase is a receiver that misbehaves for its first `bad` attempts.
type faultCase struct {
	name string
	bad  int
	// want is a substring of each bad attempt's recorded error.
	want string
	// timeout is the attempt timeout. A fault that ends the attempt by
	// itself (refused, reset) gets 30 s: at 500 ms, an attempt
	// starved of CPU on a loaded machine timed out before the reset came
	// and was recorded as a timeout. A fault that is a timeout (the
	// receiver holds the attempt until the sender gives up) gets
	// slowTimeout: the healthy attempt after it must finish within it,
	// TLS handshake included.
	timeout time.Duration
	// start starts the receiver, which misbehaves while failing()
	// holds, and returns its URI (and, for https, the TLS configuration
	// that trusts it).
	start func(t *testing.T, failing func() bool) (string, *tls.Config)
}

// Receiver faults: a receiver that is down (connection refused), trickles
// its response headers past the attempt timeout, resets the connection in
// the middle of a response, or stalls the TLS handshake. Each failed
// attempt is recorded with what happened; once the receiver is healthy
// the delivery succeeds, and exactly the attempts made are recorded.
func TestReceiverFaults(t *testing.T) {
	t.Parallel()
	cases := []faultCase{
		{name: "down", bad: 2, want: "refused", timeout: 30 * time.Second, start: downReceiver},
		{name: "trickle", bad: 2, want: "timeout", timeout: slowTimeout, start: trickleReceiver},
		{name: "reset mid-response", bad: 2, want: "reset", timeout: 30 * time.Second, start: resetReceiver},
		{name: "TLS handshake stall", bad: 2, want: "timeout", timeout: slowTimeout, start: tlsStallReceiver},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var healthy atomic.Bool
			uri, tlsCfg := tc.start(t, func() bool { return !healthy.Load() })
			b := setup(t, setupOpts{attemptTimeout: tc.timeout, tls: tlsCfg})
			w, _ := b.webhook(uri)
			b.publish(`{}`)
			id := b.deliveries(w.ID)[0].ID
			d, as := b.attemptsOf(id, 1)
			for n := 2; n <= tc.bad+1; n++ {
				if n == tc.bad+1 {
					healthy.Store(true)
					// The down receiver comes up on its own goroutine: the
					// last attempt waits until it listens.
					host := strings.TrimPrefix(strings.TrimPrefix(uri, "http://"), "https://")
					host = host[:strings.Index(host, "/")]
					waitFor(t, "the receiver listening", func() bool {
						c, err := net.Dial("tcp", host)
						if err == nil {
							c.Close()
						}
						return err == nil
					})
				}
				d, as = b.retryNow(d, n)
			}
			// An attempt and the delivery's new state commit together:
			// the delivery has settled, or the last attempt failed.
			if d.Status != core.DeliverySucceeded || len(as) != tc.bad+1 || d.Attempts != tc.bad+1 {
				for i, a := range as {
					t.Logf("attempt %d: status %d, error %q, latency %v", i+1, a.StatusCode, a.Error, a.Latency)
				}
				t.Fatalf("delivery %s after %d attempts (%d recorded); want succeeded after %d", d.Status, d.Attempts, len(as), tc.bad+1)
			}
			for i, a := range as[:tc.bad] {
				if a.StatusCode != 0 || !strings.Contains(a.Error, tc.want) {
					t.Errorf("attempt %d: status %d, error %q; want no status and an error with %q", i+1, a.StatusCode, a.Error, tc.want)
				}
			}
			if last := as[tc.bad]; last.StatusCode != http.StatusNoContent || last.Error != "" {
				t.Errorf("last attempt: %d %q; want 204", last.StatusCode, last.Error)
			}
		})
	}
}

// downReceiver refuses connections (no listener) while failing.
func downReceiver(t *testing.T, failing func() bool) (string, *tls.Config) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var once sync.Once
	go func() {
		// Comes up once it stops failing (polled: it has no request to
		// notice it by).
		for failing() {
			time.Sleep(5 * time.Millisecond)
		}
		once.Do(func() {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				t.Errorf("re-listen on %s: %v", addr, err)
				return
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })}
			go srv.Serve(l)
			t.Cleanup(func() { srv.Close() })
		})
	}()
	return "http://" + addr + "/hook", nil
}

// slowTimeout is the attempt timeout of the faults that are timeouts: ten
// times the longest healthy attempt seen here (a TLS one, 0.3 s, with
// -race on two cores at load 20). The fault itself lasts until the sender
// gives up, however long that is.
const slowTimeout = 3 * time.Second

// trickleReceiver sends its response headers a byte at a time and never
// ends them (a status line, then a header line that goes on) until the
// sender gives up, while failing.
func trickleReceiver(t *testing.T, failing func() bool) (string, *tls.Config) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !failing() {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		head := "HTTP/1.1 204 No Content\r\nX-Trickle: "
		for i := 0; ; i++ {
			c := byte('a')
			if i < len(head) {
				c = head[i]
			}
			buf.WriteByte(c)
			if buf.Flush() != nil {
				return
			}
			select {
			case <-time.After(200 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hook", nil
}

// resetReceiver writes part of a response and resets the connection
// while failing. (A reset after complete headers is not a failure: the
// receiver answered; its truncated body is recorded as read.)
func resetReceiver(t *testing.T, failing func() bool) (string, *tls.Config) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !failing() {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-") // cut off before the headers end
		buf.Flush()
		conn.(*net.TCPConn).SetLinger(0) // close with RST
		conn.Close()
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hook", nil
}

// tlsStallReceiver accepts TCP connections and never answers the TLS
// ClientHello while failing; then it serves TLS (the test's sender trusts
// any certificate of this test server through its TLS config).
func tlsStallReceiver(t *testing.T, failing func() bool) (string, *tls.Config) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	inner := srv.Listener
	srv.Listener = &stallListener{Listener: inner, stall: failing}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL + "/hook", srv.Client().Transport.(*http.Transport).TLSClientConfig
}

// stallListener holds accepted connections silent while stall() is true.
type stallListener struct {
	net.Listener
	stall func() bool
	mu    sync.Mutex
	held  []net.Conn
}

func (l *stallListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.stall() {
			return c, nil
		}
		l.mu.Lock()
		l.held = append(l.held, c) // never read: the handshake stalls
		l.mu.Unlock()
	}
}

func (l *stallListener) Close() error {
	l.mu.Lock()
	for _, c := range l.held {
		c.Close()
	}
	l.mu.Unlock()
	return l.Listener.Close()
}
