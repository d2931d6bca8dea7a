package api_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawExchangeAfterAnswer sends a publish and reads its answer, so that the
// connection is kept alive and waits for its next request as it does
// between requests, then writes req in the pieces splits cuts it into,
// half-closes and returns every byte the server sent until it closed the
// connection, the first answer included.
func rawExchangeAfterAnswer(t *testing.T, addr string, req []byte, splits []int) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	var out bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &out))
	const first = "POST /v1beta/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
	if _, err := io.WriteString(c, first); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("first answer: %v", err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.Close {
		t.Fatalf("first answer: %v, close %v", err, resp.Close)
	}
	writePieces(c, req, splits)
	_, err = io.Copy(io.Discard, br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server neither answered nor closed the connection in 20 s; got %q", out.Bytes())
	}
	return out.Bytes()
}

// FuzzFastPathAnswersAsNetHTTP for the requests of a connection kept alive
// after an answer: whatever bytes come next, in whatever pieces, it answers them as
// net/http alone does.
func FuzzFastPathAfterAnAnswer(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s), uint16(0), uint16(0))
		if i := strings.Index(s, "\r\n\r\n"); i > 0 {
			f.Add([]byte(s), uint16(i+1), uint16(i+3))
			f.Add([]byte(s), uint16(i+4), uint16(i+5))
		}
		if i := strings.LastIndex(s, "POST "); i > 0 {
			f.Add([]byte(s), uint16(i), uint16(i+2))
		}
	}
	plain, fast := fuzzServer(f, false), fuzzServer(f, true)
	f.Fuzz(func(t *testing.T, req []byte, split1, split2 uint16) {
		if len(req) > 64<<10 {
			return
		}
		splits := splitPoints(req, split1, split2)
		want := responses(rawExchangeAfterAnswer(t, plain, req, splits))
		got := responses(rawExchangeAfterAnswer(t, fast, req, splits))
		if !sameOutcome(want, got) {
			t.Fatalf("after an answer, request %s (split at %v):\nnet/http:  %s\nfast path: %s", short(req), splits, short(want), short(got))
		}
	})
}
