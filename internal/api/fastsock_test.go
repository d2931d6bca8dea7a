//go:build linux && (amd64 || arm64)

package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// fastSockServer serves h through a FastListener on loopback. The test
// opens one connection; counters returns the fast path's connection (call
// it while the connection is open), and ended waits until it has ended.
func fastSockServer(t *testing.T, h http.HandlerFunc) (addr string, counters func() *fastSock, ended func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Long timeouts: a connection the fast path forgot to read would wait
	// for them, and the test's own deadline fails first.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	fast := NewFastListener(ln, srv)
	go func() { _ = srv.Serve(fast) }()
	t.Cleanup(func() { _ = srv.Close(); _ = fast.Wait(context.Background()) })
	counters = func() *fastSock {
		fast.mu.Lock()
		defer fast.mu.Unlock()
		for c := range fast.conns {
			return &c.sock
		}
		t.Fatal("the fast path serves no connection")
		return nil
	}
	ended = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := fast.Wait(ctx); err != nil { // after the connection's end: its counters are final
			t.Fatal(err)
		}
	}
	return ln.Addr().String(), counters, ended
}

func rawPublish(body string) string {
	return fmt.Sprintf("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

func readAnswer(t *testing.T, br *bufio.Reader, want string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != want {
		t.Fatalf("answer %d %q, want 200 %q", resp.StatusCode, body, want)
	}
}

func echoBody(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	_, _ = w.Write(body)
}

// A kept-alive client that sends a publish, waits for its answer and sends
// the next: after the first, every request is read by the one read that
// waited for it and served in place — no read finds the socket empty,
// but for the first wait (the read that starts waiting in place).
func TestFastPathReadsEachRequestOnce(t *testing.T) {
	t.Parallel()
	addr, counters, ended := fastSockServer(t, echoBody)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	const n = 50
	var s *fastSock
	for i := range n {
		if _, err := io.WriteString(c, rawPublish(fmt.Sprint("publish ", i))); err != nil {
			t.Fatal(err)
		}
		readAnswer(t, br, fmt.Sprint("publish ", i))
		if i == 0 {
			s = counters()
		}
	}
	_ = c.Close()
	ended()
	reads, empty, served := s.reads, s.empty, s.served
	// Request 1 is read before the connection is known to be kept alive;
	// the others in place, then the end: n − 1 + 1 reads that found bytes.
	if served != n-1 || empty > 1 || reads-empty != n {
		t.Fatalf("%d requests: %d served in place, %d reads of which %d found nothing; want %d served, %d reads that found bytes, at most 1 that found nothing",
			n, served, reads, empty, n-1, n)
	}
}

// A client that half-closes its connection right after its last request
// (pipelined behind one the handler is still serving, so that request and
// end wait in the socket together) gets both answers and the connection's
// end at once, as from net/http — not after the idle timeout, which a
// wait without TCP_INQ's count would have cost: the end came before the
// read that took the request.
func TestFastPathEndsAConnectionHalfClosedWithItsRequest(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	addr, counters, ended := fastSockServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if string(body) == "block" {
			close(entered)
			<-release
		}
		_, _ = w.Write(body)
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	_, _ = io.WriteString(c, rawPublish("first"))
	readAnswer(t, br, "first")
	s := counters()
	_, _ = io.WriteString(c, rawPublish("block"))
	<-entered
	// In place now, the handler waiting: the last request and the end.
	_, _ = io.WriteString(c, rawPublish("last"))
	_ = c.(*net.TCPConn).CloseWrite()
	close(release)
	readAnswer(t, br, "block")
	readAnswer(t, br, "last")
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last answer: %v, want the connection's end", err)
	}
	_ = c.Close()
	ended()
	if s.served != 2 {
		t.Fatalf("%d requests served in place, want 2", s.served)
	}
}
