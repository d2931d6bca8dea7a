package api_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// pollNetwork returns once the runtime's network poller has collected
// every readiness event of the bytes written so far on loopback: it parks
// a goroutine in a read on a connection of its own, then writes to that
// connection, and a parked read is woken only by the poller, which
// collects its events in arrival order.
func pollNetwork(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	w, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_ = r.SetReadDeadline(time.Now().Add(30 * time.Second))
	done := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := r.Read(b[:])
		done <- err
	}()
	// Wait until that read is parked on the poller.
	buf := make([]byte, 1<<20)
	for {
		s := string(buf[:runtime.Stack(buf, true)])
		parked := false
		for _, g := range strings.Split(s, "\n\n") {
			if strings.Contains(g, "[IO wait") && strings.Contains(g, "pollNetwork.func") {
				parked = true
			}
		}
		if parked {
			break
		}
		runtime.Gosched()
	}
	if _, err := w.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A request that arrives while the fast path is still serving the one
// before it on the same connection (a pipelining client) is answered at
// once, even when the runtime's poller has already seen it arrive: the
// fast path must not wait for another readiness event that will never
// come (it waited for the idle timeout, then closed the connection
// without answering).
func TestFastPathPipelinedRequestArrivingDuringHandler(t *testing.T) {
	t.Parallel()
	h, entered, release := blockingHandler()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 3 * time.Second}
	c, _ := serveFast(t, srv)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	send := func(body string) {
		t.Helper()
		if _, err := fmt.Fprintf(c, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
			t.Fatal(err)
		}
	}
	read := func(want string) {
		t.Helper()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
		}
	}
	// Two requests one after the other, so that the connection is kept
	// alive and read as it is between requests.
	send("one")
	read("ok one")
	send("block")
	<-entered
	// The next request comes while "block" is being served, and the
	// poller sees it before the fast path reads again.
	send("three")
	pollNetwork(t)
	close(release)
	read("ok block")
	read("ok three")
}

// A client that sends its request and half-closes while the request is
// being served gets its answer and then the end of the connection at
// once, as from net/http — not after the idle timeout.
func TestFastPathHalfCloseDuringHandler(t *testing.T) {
	t.Parallel()
	h, entered, release := blockingHandler()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	c, _ := serveFast(t, srv)
	// Far below the idle timeout: the end must come at once.
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	send := func(body string) {
		t.Helper()
		if _, err := fmt.Fprintf(c, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReader(c)
	send("one")
	if resp, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	} else {
		_, _ = io.ReadAll(resp.Body)
	}
	send("block")
	<-entered
	_ = c.(*net.TCPConn).CloseWrite()
	pollNetwork(t)
	close(release)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "ok block" {
		t.Fatalf("got %q", body)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the answer: %v, want EOF (the server closing as it read the client's end)", err)
	}
}
