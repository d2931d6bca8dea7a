package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
)

// echoHandler answers every request with what a handler sees of it: the
// method, target, Host, protocol, headers, body (its length and hash, or
// that it could not be read to its end) and whether the connection
// closes after it — the outcome the fast path must share with net/http.
// The answer is written with the API's own writers.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var hdr []string
	for k, vs := range r.Header {
		for _, v := range vs {
			hdr = append(hdr, k+": "+v)
		}
	}
	slices.Sort(hdr)
	sum := sha256.Sum256(body)
	out := map[string]any{
		"method": r.Method, "uri": r.RequestURI, "path": r.URL.Path, "raw_path": r.URL.RawPath, "query": r.URL.RawQuery,
		"host": r.Host, "proto": r.Proto, "length": r.ContentLength, "te": r.TransferEncoding, "close": r.Close,
		"header": hdr, "body_len": len(body), "body_sha": hex.EncodeToString(sum[:8]),
	}
	if err != nil {
		out["body_error"] = true
	}
	status := http.StatusOK
	// Bodies may ask for other answers, to try the response writer (a
	// body cut short is always answered as such: see sameOutcome).
	switch {
	case err != nil:
	case bytes.HasPrefix(body, []byte("204")):
		status = http.StatusNoContent
	case bytes.HasPrefix(body, []byte("error")):
		api.WriteError(w, r, nil, core.ErrPermissionDenied)
		return
	case bytes.HasPrefix(body, []byte("plain")):
		w.Header().Set("X-Extra", "a\r\nb ")
		_, _ = w.Write([]byte("<html>plain</html>"))
		return
	case bytes.HasPrefix(body, []byte("panic")):
		panic("fuzz panic")
	}
	api.WriteJSON(w, status, out)
}

// fuzzServer serves echoHandler on loopback, through the fast path or
// through net/http alone.
func fuzzServer(tb testing.TB, fast bool) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(echoHandler), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute, IdleTimeout: time.Minute,
		ErrorLog: log.New(io.Discard, "", 0)}
	var l net.Listener = ln
	var fl *api.FastListener
	if fast {
		fl = api.NewFastListener(ln, srv)
		l = fl
	}
	go func() { _ = srv.Serve(l) }()
	tb.Cleanup(func() {
		_ = srv.Close()
		if fl != nil {
			_ = fl.Wait(context.Background())
		}
	})
	return ln.Addr().String()
}

// rawExchange writes req to a new connection in the pieces splits cuts
// it into, half-closes it and returns every byte the server sent until it
// closed the connection.
func rawExchange(t *testing.T, addr string, req []byte, splits []int) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	writePieces(c, req, splits)
	var out bytes.Buffer
	_, err = io.Copy(&out, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server neither answered nor closed the connection in 20 s; got %q", out.Bytes())
	}
	// A reset (the server closed with unread bytes) ends what it sent.
	return out.Bytes()
}

var dateLine = regexp.MustCompile(`(?m)^Date: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\r$`)

// responses splits a server's bytes into responses, each its status line,
// its header lines sorted with Date's value blanked, and its body. The
// framing is compared through its result: a body is read by its
// Content-Length or its chunks (net/http chunks an answer longer than its
// buffer, the fast path never does), and the framing headers are left
// out. A HEAD's answer has a Content-Length but no body, so both servers'
// bytes (the same length) are cut alike. A remainder that is no whole
// response is kept as is.
func responses(b []byte) []string {
	b = dateLine.ReplaceAllLiteral(b, []byte("Date: -----------------------------\r"))
	var out []string
	for len(b) > 0 {
		end := bytes.Index(b, []byte("\r\n\r\n"))
		if end < 0 || !bytes.HasPrefix(b, []byte("HTTP/1.")) {
			return append(out, "rest: "+strconv.Quote(string(b)))
		}
		lines := strings.Split(string(b[:end]), "\r\n")
		status := lines[0]
		b = b[end+4:]
		n, chunked := 0, false
		var hdr []string
		for _, h := range lines[1:] {
			if v, ok := strings.CutPrefix(h, "Content-Length: "); ok {
				n, _ = strconv.Atoi(v)
				continue
			}
			if h == "Transfer-Encoding: chunked" {
				chunked = true
				continue
			}
			hdr = append(hdr, h)
		}
		slices.Sort(hdr)
		var body []byte
		if chunked {
			r := bytes.NewReader(b)
			br := bufio.NewReader(r)
			var err error
			body, err = io.ReadAll(httputil.NewChunkedReader(br))
			if err != nil {
				return append(out, "bad chunks: "+strconv.Quote(string(b)))
			}
			// What the chunked reader buffered past the last chunk, and
			// the final CRLF after the (absent) trailers.
			rest := b[len(b)-r.Len()-br.Buffered():]
			b = bytes.TrimPrefix(rest, []byte("\r\n"))
		} else {
			n = min(n, len(b))
			body, b = b[:n], b[n:]
		}
		out = append(out, status+"\n"+strings.Join(hdr, "\n")+"\n\n"+string(body))
	}
	return out
}

// short cuts s for a failure message.
func short(v any) string {
	s := fmt.Sprintf("%q", v)
	if len(s) > 3000 {
		s = s[:3000] + "…"
	}
	return s
}

// sameOutcome reports whether the fast path's answers match net/http's.
// One difference is by design (docs/design.md, "The publish fast path"):
// a request whose body ends before its Content-Length (the client
// half-closed) is not answered by the fast path, where net/http answers
// the handler's reply to a truncated body to a client that is gone.
func sameOutcome(want, got []string) bool {
	if slices.Equal(want, got) {
		return true
	}
	if len(want) == len(got)+1 && strings.Contains(want[len(want)-1], `"body_error":true`) &&
		strings.HasPrefix(want[len(want)-1], "HTTP/1.1 200 ") && slices.Equal(want[:len(got)], got) {
		return true
	}
	return false
}

// fuzzSeeds are the requests worth trying first: publishes and
// everything the fast path must leave to net/http or read exactly as it
// does.
func fuzzSeeds() []string {
	p := func(extra, body string) string {
		return fmt.Sprintf("POST /v1beta/events HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s", extra, len(body), body)
	}
	pub := `{"type":"a"}`
	get := "GET /v1beta/webhooks HTTP/1.1\r\nHost: x\r\n\r\n"
	return []string{
		p("", pub),
		p("", pub) + p("", pub) + p("Connection: close\r\n", pub) + p("", pub),
		p("", pub) + get + p("", pub),
		p("", pub) + "HEAD /v1beta/events HTTP/1.1\r\nHost: x\r\n\r\n" + p("", pub),
		p("Connection: keep-alive\r\n", pub),
		p("Connection: close\r\n", pub),
		p("Connection: Close\r\n", pub),
		p("Connection: keep-alive, close\r\n", pub),
		p("Connection: close\r\nConnection: close\r\n", pub),
		p("Content-Length: 3\r\n", pub),
		p("Content-Length: "+strconv.Itoa(len(pub))+"\r\n", pub),
		p("content-length: 0\r\n", pub),
		"POST /v1beta/events HTTP/1.1\r\nHost: x\r\nContent-Length: 0012\r\n\r\n" + pub,
		"POST /v1beta/events HTTP/1.1\r\nHost: x\r\nContent-Length: +12\r\n\r\n" + pub,
		"POST /v1beta/events HTTP/1.1\r\nHost: x\r\nContent-Length:  12 \r\n\r\n" + pub,
		"POST /v1beta/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n" + pub,
		"POST /v1beta/events HTTP/1.1\r\nHost: x\r\nContent-Length: 99\r\n\r\n" + pub,
		"POST /v1beta/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n" + pub,
		"POST /v1beta/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 12\r\n\r\n" + "c\r\n" + pub + "\r\n0\r\n\r\n",
		"POST /v1beta/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + "c\r\n" + pub + "\r\n0\r\n\r\n",
		p("Expect: 100-continue\r\n", pub),
		p("Upgrade: h2c\r\nConnection: Upgrade\r\n", pub),
		p("Pragma: no-cache\r\n", pub),
		p("Trailer: X\r\n", pub),
		p("X-A: b\r\n c\r\n", pub),
		p("X-A : b\r\n", pub),
		p("X-A:\tb\t\r\n", pub),
		p("X-A: b\rc\r\n", pub),
		p("X-A: b\x00c\r\n", pub),
		p("X-A: b\xffc\r\n", pub),
		p("X\x7fA: b\r\n", pub),
		p("X-A: b\nX-B: c\r\n", pub),
		p(":x\r\n", pub),
		p("X-A:\r\n", pub),
		p("Host: y\r\n", pub),
		"POST /v1beta/events HTTP/1.1\r\nHost: \r\nContent-Length: 12\r\n\r\n" + pub,
		"POST /v1beta/events HTTP/1.1\r\nHost: a b\r\nContent-Length: 12\r\n\r\n" + pub,
		"POST /v1beta/events HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 12\r\n\r\n" + pub,
		"POST /v1beta/events HTTP/1.1\r\nContent-Length: 12\r\n\r\n" + pub,
		"POST /v1beta/events HTTP/1.0\r\nHost: x\r\nContent-Length: 12\r\n\r\n" + pub,
		"POST http://x/v1beta/events HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n" + pub,
		"POST /v1beta/events?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n" + pub,
		"POST /v1beta/events  HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n" + pub,
		"POST /v1beta/events HTTP/1.1 \r\nHost: x\r\nContent-Length: 12\r\n\r\n" + pub,
		"post /v1beta/events HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n" + pub,
		"POST /v1beta/events HTTP/1.1\nHost: x\nContent-Length: 12\n\n" + pub,
		"POST /v1beta/events HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\n" + pub,
		"POST /v1beta/events HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\r\n" + pub,
		"POST /v1beta/events HTTP/1.1\r\n\r\n",
		"POST /v1beta/events HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{\"typ",
		"POST /v1beta/events HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n",
		"POST /v1beta/events HTTP/1.1\r\nHost: x\r\nContent-Len",
		"POST /v1beta/eve",
		"\r\n" + p("", pub),
		p("", pub) + "\r\n" + p("", pub),
		p("", pub) + "\r\n",
		p("", pub) + "\n\r\n" + p("", pub) + "\r\n" + get,
		p("", pub) + "\r\n\r\n\r\n" + p("", pub),
		p("X-Long: "+strings.Repeat("a", 4200)+"\r\n", pub),
		p("X-Long: "+strings.Repeat("a", 3950)+"\r\n", pub),
		p("", "204") + p("", "error!") + p("", "plain"),
		p("", "panic") + p("", pub),
		"POST /v1beta/events:batchPublish HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n" + pub,
		"POST /v1/events HTTP/1.1\r\nhost: x\r\nCONTENT-LENGTH: 12\r\nx-goog-api-key: k\r\nX-Goog-Api-Key: l\r\n\r\n" + pub,
		"POST /v1alpha/events HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nCookie: a=b\r\nAuthorization: Bearer x\r\n\r\n" + pub,
	}
}

// Whatever bytes a client sends, in whatever pieces, a server with the
// publish fast path answers them as net/http alone does: the same
// responses (status, header set but Date's value, body) in the same
// order, then the connection closed at the same point — as the handler
// saw the same requests (echoHandler answers with what it saw).
func FuzzFastPathAnswersAsNetHTTP(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s), uint16(0), uint16(0))
		if i := strings.Index(s, "\r\n\r\n"); i > 0 {
			f.Add([]byte(s), uint16(i+1), uint16(i+3))
		}
	}
	plain, fast := fuzzServer(f, false), fuzzServer(f, true)
	f.Fuzz(func(t *testing.T, req []byte, split1, split2 uint16) {
		if len(req) > 64<<10 {
			return
		}
		splits := splitPoints(req, split1, split2)
		want := responses(rawExchange(t, plain, req, splits))
		got := responses(rawExchange(t, fast, req, splits))
		if !sameOutcome(want, got) {
			t.Fatalf("request %s (split at %v):\nnet/http:  %s\nfast path: %s", short(req), splits, short(want), short(got))
		}
	})
}

// A request head cut at every byte (each piece written on its own, as a
// slow client sends it) is read as a whole one.
func TestFastPathHeadInEveryPieces(t *testing.T) {
	t.Parallel()
	plain, fast := fuzzServer(t, false), fuzzServer(t, true)
	req := []byte(fuzzSeeds()[1])
	want := responses(rawExchange(t, plain, req, nil))
	for i := 1; i < len(req); i++ {
		got := responses(rawExchange(t, fast, req, []int{i}))
		if !sameOutcome(want, got) {
			t.Fatalf("split at %d:\nnet/http:  %s\nfast path: %s", i, short(want), short(got))
		}
	}
}

// splitPoints are the fuzzer's split offsets that fall inside req, in
// order: where the request is cut into separately written pieces.
func splitPoints(req []byte, split1, split2 uint16) []int {
	var splits []int
	for _, s := range []uint16{split1, split2} {
		if s > 0 && int(s) < len(req) {
			splits = append(splits, int(s))
		}
	}
	slices.Sort(splits)
	return splits
}

// writePieces writes req to c cut at splits, each piece on its own, then
// half-closes c; it stops early if the server closed the connection (what
// it answered is still there to read).
func writePieces(c net.Conn, req []byte, splits []int) {
	prev := 0
	for _, s := range append(slices.Clone(splits), len(req)) {
		if s < prev || s > len(req) {
			continue
		}
		if _, err := c.Write(req[prev:s]); err != nil {
			break
		}
		prev = s
	}
	_ = c.(*net.TCPConn).CloseWrite()
}
