package api_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// A kept-alive fast-path connection stays open while its requests keep
// coming, for longer than the idle timeout in all, and is closed by the
// server about the idle timeout after its last answer.
func TestFastPathIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 1200 * time.Millisecond
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	}), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idle}
	c, _ := serveFast(t, srv)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	start := time.Now()
	n := 0
	for time.Since(start) < 2*idle {
		if _, err := fmt.Fprintf(c, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
			t.Fatalf("request %d after %v: %v", n, time.Since(start), err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d after %v: %v (closed while in use)", n, time.Since(start), err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		n++
	}
	last := time.Now()
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle: %v, want the server's close", err)
	}
	if d := time.Since(last); d < idle-time.Second || d > idle+5*time.Second {
		t.Fatalf("closed %v after the last answer, idle timeout %v", d, idle)
	}
	t.Logf("%d requests over %v; closed %v after the last", n, last.Sub(start), time.Since(last))
}
