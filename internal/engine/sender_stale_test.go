package engine

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// staleReceiver answers each request on a connection with 204 and then,
// the connection idle, ends it as end does; every ended connection is
// reported on ended.
func staleReceiver(t *testing.T, end func(*net.TCPConn)) (url string, ended <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	ch := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c *net.TCPConn) {
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					_ = c.Close()
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
				end(c)
				ch <- struct{}{}
			}(c.(*net.TCPConn))
		}
	}()
	return "http://" + ln.Addr().String() + "/", ch
}

// A kept-alive connection the receiver ended right after answering is
// retried on a new connection
// at once, however the receiver ended it: a reset, or a half-close whose
// socket the receiver keeps open a while (net/http's lingering close,
// nginx's lingering_close).
func TestSenderRetriesConnectionEndedRightAfterAnswer(t *testing.T) {
	t.Parallel()
	ends := map[string]func(*net.TCPConn){
		"reset": func(c *net.TCPConn) { _ = c.SetLinger(0); _ = c.Close() },
		"close": func(c *net.TCPConn) { _ = c.Close() },
		"half-close, lingering": func(c *net.TCPConn) {
			_ = c.CloseWrite()
			go func() { _, _ = io.Copy(io.Discard, c); _ = c.Close() }() // reads until the sender closes
		},
	}
	for name, end := range ends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url, ended := staleReceiver(t, end)
			s := devSender(t, SenderConfig{AttemptTimeout: 20 * time.Second})
			if res := s.Send(context.Background(), Request{URI: url, Body: []byte("{}")}); res.StatusCode != 204 {
				t.Fatalf("first attempt: %d %s", res.StatusCode, res.Err)
			}
			<-ended
			start := time.Now()
			res := s.Send(context.Background(), Request{URI: url, Body: []byte("{}")})
			if res.StatusCode != 204 {
				t.Fatalf("second attempt: %d %s after %v", res.StatusCode, res.Err, time.Since(start))
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("second attempt took %v: it waited on the ended connection", d)
			}
		})
	}
}

// A receiver that takes the request on a new connection and ends the
// connection without an answer (it crashed, or a proxy in front of it
// gave up) gets the request once per attempt. The resend meant for a
// stale kept-alive connection sent it again at once on a second
// connection, so the receiver got every attempt twice while one attempt
// was recorded.
func TestSenderSendsOnceOnANewConnectionEndedWithoutAnAnswer(t *testing.T) {
	t.Parallel()
	ends := map[string]func(*net.TCPConn){
		"reset": func(c *net.TCPConn) { _ = c.SetLinger(0); _ = c.Close() },
		"close": func(c *net.TCPConn) { _ = c.Close() },
	}
	for name, end := range ends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ln.Close() })
			var requests atomic.Int64
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func(c *net.TCPConn) {
						req, err := http.ReadRequest(bufio.NewReader(c))
						if err == nil {
							_, _ = io.Copy(io.Discard, req.Body)
							requests.Add(1)
						}
						end(c)
					}(c.(*net.TCPConn))
				}
			}()
			s := devSender(t, SenderConfig{AttemptTimeout: 20 * time.Second})
			for n := int64(1); n <= 2; n++ {
				res := s.Send(context.Background(), Request{URI: "http://" + ln.Addr().String() + "/", Body: []byte("{}")})
				if _, ok := res.Outcome.(*core.Failure); !ok || res.StatusCode != 0 {
					t.Fatalf("attempt %d: %d %q; want a failure without a status", n, res.StatusCode, res.Err)
				}
				// The attempt has ended: every request it sent was read.
				if got := requests.Load(); got != n {
					t.Fatalf("after %d attempts the receiver got %d requests", n, got)
				}
			}
		})
	}
}

// A failed attempt's record says what the destination did, in words of
// its own, not fasthttp's advice to the server's author ("make sure the
// server returns 'Connection: close'") or to longhook's code ("increase
// readbuffersize"), which the console and the API showed as the error.
func TestSenderFailuresSayWhatHappened(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, answer, want string
	}{
		{"closed without an answer", "", "connection closed by the destination before a response"},
		{"only an interim answer", "HTTP/1.1 100 Continue\r\n\r\n", "connection closed by the destination before a response"},
		{"oversized headers", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", "response headers larger than 32 KiB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func(c net.Conn) {
						defer c.Close()
						req, err := http.ReadRequest(bufio.NewReader(c))
						if err != nil {
							return
						}
						_, _ = io.Copy(io.Discard, req.Body)
						_, _ = io.WriteString(c, tc.answer)
					}(c)
				}
			}()
			s := devSender(t, SenderConfig{AttemptTimeout: 20 * time.Second})
			res := s.Send(context.Background(), Request{URI: "http://" + ln.Addr().String() + "/", Body: []byte("{}")})
			if res.Err != tc.want {
				t.Errorf("recorded error %q; want %q", res.Err, tc.want)
			}
		})
	}
}
