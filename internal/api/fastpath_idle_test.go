package api_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A kept-alive fast-path connection stays open while its requests keep
// coming, for longer than the idle timeout in all, and is closed by the
// server about the idle timeout after its last answer. A run in which
// the test itself stalled for half the idle timeout between an answer and
// its next request (a loaded machine under the race detector) cannot tell
// a wrong close from a right one; it is run again, a few times at most.
func TestFastPathIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 1200 * time.Millisecond
	for try := 1; ; try++ {
		stalled := fastPathIdleRun(t, idle)
		if stalled == 0 {
			return
		}
		if try == 5 {
			t.Fatalf("every run stalled (the last for %v between an answer and its next request)", stalled)
		}
		t.Logf("run %d: the client stalled %v between an answer and its next request; again", try, stalled)
	}
}

// fastPathIdleRun is one run of TestFastPathIdleTimeout; it returns the
// client's stall when the server's close may have been a right one.
func fastPathIdleRun(t *testing.T, idle time.Duration) (stalled time.Duration) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	}), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idle}
	c, _ := serveFast(t, srv)
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(c)
	start := time.Now()
	answered := start
	n := 0
	for time.Since(start) < 2*idle {
		gap := time.Since(answered)
		_, err := fmt.Fprintf(c, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
		var resp *http.Response
		if err == nil {
			resp, err = http.ReadResponse(br, nil)
		}
		if err != nil {
			if gap >= idle/2 {
				return gap
			}
			t.Fatalf("request %d, %v after the previous answer: %v (closed while in use)", n, gap, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		answered = time.Now()
		n++
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle: %v, want the server's close", err)
	}
	// The server's idle timer started before the client read the answer:
	// a close less than the idle timeout after the read is early only by
	// more than that margin. Late is bounded only by the deadline.
	if d := time.Since(answered); d < idle-time.Second {
		t.Fatalf("closed %v after the last answer, idle timeout %v", d, idle)
	}
	t.Logf("%d requests over %v; closed %v after the last", n, answered.Sub(start), time.Since(answered))
	return 0
}

// A client that ends a body with empty lines (CRLF, as old clients do;
// RFC 9112 §2.2) and then goes idle has sent no request yet: its
// connection is closed at the idle timeout, not at the header timeout,
// and serves the next request when it comes.
func TestFastPathIdleAfterTrailingEmptyLines(t *testing.T) {
	t.Parallel()
	const header, idle = 150 * time.Millisecond, 3 * time.Second
	for name, trail := range map[string]string{"CRLF": "\r\n", "LF": "\n", "two CRLF": "\r\n\r\n"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				_, _ = io.WriteString(w, "ok")
			}), ReadHeaderTimeout: header, IdleTimeout: idle}
			c, _ := serveFast(t, srv)
			br := bufio.NewReader(c)
			publish := func(trail string) {
				t.Helper()
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				if _, err := io.WriteString(c, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"+trail); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK || resp.Close {
					t.Fatalf("answer %v %v, close %v", resp.Status, err, resp.Close)
				}
			}
			publish(trail)
			// Still open well past the header timeout: the read ends at
			// the client's deadline, not at the server's close.
			last := time.Now()
			_ = c.SetReadDeadline(last.Add(8 * header))
			var ne net.Error
			if _, err := br.ReadByte(); !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("after %v idle behind %q: %v, want the connection still open (header timeout %v, idle %v)",
					time.Since(last).Round(time.Millisecond), trail, err, header, idle)
			}
			publish(trail)
			last = time.Now()
			_ = c.SetReadDeadline(last.Add(20 * time.Second))
			if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
				t.Fatalf("idle: %v, want the server's close", err)
			}
			// Deadlines between requests are refreshed at most once a
			// second: the close comes between idle − 1 s and idle.
			if d := time.Since(last); d < idle-time.Second || d > idle+5*time.Second {
				t.Fatalf("closed %v after the last answer, idle timeout %v", d, idle)
			}
		})
	}
}
