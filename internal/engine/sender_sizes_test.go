package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// Requests of every size, small and larger than the socket buffers,
// reach the receiver whole on a kept-alive connection.
func TestSenderBodySizes(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		sum := sha256.Sum256(b)
		w.Header().Set("Body-Digest", hex.EncodeToString(sum[:]))
		_, _ = w.Write(sum[:4])
	}))
	defer srv.Close()
	s := devSender(t, SenderConfig{})
	for _, n := range []int{2, 1000, 16<<10 - 300, 16 << 10, 16<<10 + 1, 1 << 20, 100} {
		body := bytes.Repeat([]byte{'a' + byte(n%26)}, n)
		sum := sha256.Sum256(body)
		res := s.Send(context.Background(), Request{URI: srv.URL, Body: body})
		if res.StatusCode != 200 || !bytes.Equal(res.Response, sum[:4]) {
			t.Errorf("%d bytes: status %d (%s), response %x, want 200 and %x", n, res.StatusCode, res.Err, res.Response, sum[:4])
		}
	}
}

// A receiver that accepts a request and never reads it times out like
// one that never answers: the request is written within the attempt's
// deadline.
func TestSenderTimesOutAReceiverThatDoesNotRead(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // held open, never read
		}
	}()
	defer func() {
		ln.Close()
		select {
		case c := <-accepted:
			c.Close()
		default:
		}
	}()
	s := devSender(t, SenderConfig{AttemptTimeout: 300 * time.Millisecond})
	body := make([]byte, 64<<20) // more than both sockets' buffers hold
	start := time.Now()
	res := s.Send(context.Background(), Request{URI: "http://" + ln.Addr().String() + "/", Body: body})
	if k := failureKind(t, res); k != core.FailTimeout {
		t.Errorf("kind %v (%s), want timeout", k, res.Err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the attempt took %v, its deadline was 300 ms", d)
	}
}
