package api_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// refusingServer serves, through the fast path, a handler that answers
// 401 with answer and reads none of the body, and returns a connection to
// it whose receive buffer is small: most of a long answer is still in the
// server's send buffer when it closes the connection.
func refusingServer(t *testing.T, answer string) (net.Conn, func() int64) {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, answer)
	}), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	c, fast := serveFast(t, srv)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, fast.Served
}

// bigPublish writes a publish whose body is the largest the fast path
// takes (more than the 256 kB it drops unread before keeping a connection
// alive) and then more until a write fails, and reports that failure.
func bigPublish(c net.Conn, more bool) <-chan error {
	wrote := make(chan error, 1)
	go func() {
		// One write: the head comes with the body's first bytes, so
		// the rest of the body is in the server's receive buffer
		// before the fast path has read the head.
		const size = 1 << 20
		req := fmt.Appendf(nil, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
		_, err := c.Write(append(req, make([]byte, size)...))
		for more && err == nil {
			_, err = c.Write(make([]byte, 64<<10))
		}
		wrote <- err
	}()
	return wrote
}

// A connection the fast path closes after an answer while bytes the
// client sent are still unread (here most of a body the handler refused
// without reading it) is half-closed and drained, not reset: the client
// reads the whole answer and then the end of the stream. (A reset drops
// whatever part of the answer the client has not received yet.)
func TestFastPathClosingKeepsTheAnswer(t *testing.T) {
	t.Parallel()
	answer := strings.Repeat("refused\n", 128<<10) // 1 MiB
	c, served := refusingServer(t, answer)
	wrote := bigPublish(c, false)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || len(body) != len(answer) || string(body) != answer {
		t.Fatalf("answer %s: %d of its %d bytes, %v", resp.Status, len(body), len(answer), err)
	}
	if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
		t.Fatalf("answer %s, close %v; want 401 closing", resp.Status, resp.Close)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the answer: %v, want the end of the stream", err)
	}
	if err := <-wrote; err != nil {
		t.Logf("the client's write: %v", err)
	}
	if served() != 1 {
		t.Fatalf("served %d on the fast path, want 1", served())
	}
}

// The drain is bounded: a client that keeps sending after the answer
// (and never closes) has its connection closed all the same.
func TestFastPathClosingDrainIsBounded(t *testing.T) {
	t.Parallel()
	c, _ := refusingServer(t, "no")
	wrote := bigPublish(c, true)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	if body, err := io.ReadAll(resp.Body); err != nil || string(body) != "no" || !resp.Close {
		t.Fatalf("answer %s %q %v, close %v", resp.Status, body, err, resp.Close)
	}
	// The writes end with the server's close (a reset), well before the
	// client's 20 s deadline.
	var ne net.Error
	if err := <-wrote; err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the client's writes: %v, want the connection closed by the server", err)
	}
}
