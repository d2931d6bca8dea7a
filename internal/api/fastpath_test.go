package api_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/procstat"
)

// publishBody is a valid single publish.
const publishBody = `{"type":"batch.succeeded","data":{"id":"batches/1"}}`

// rawRequest is a request as its bytes, Content-Length computed.
func rawRequest(method, target, key string, extra string, body string) string {
	return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: example.com\r\nx-goog-api-key: %s\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s",
		method, target, key, extra, len(body), body)
}

// dial opens a connection to srv that the test closes.
func dial(t *testing.T, srv *httptest.Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

// The fast path answers publishes, pipelined ones included, and hands
// the connection to net/http at the first other request, with that
// request's bytes: every answer comes back in order on one connection.
func TestFastPathServesPublishesAndHandsOver(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createWebhook("h")
	before := f.fast.Served()
	c := dial(t, f.srv)
	batch := `{"events":[` + publishBody + `,` + publishBody + `]}`
	// Two publishes and a batch in one write (pipelined), then a list
	// (net/http's), then a publish that net/http now serves too.
	reqs := rawRequest("POST", "/v1beta/events", f.key, "", publishBody) +
		rawRequest("POST", "/v1/events", f.key, "", publishBody) +
		rawRequest("POST", "/v1alpha/events:batchPublish", f.key, "", batch) +
		rawRequest("GET", "/v1beta/webhooks", f.key, "", "") +
		rawRequest("POST", "/v1beta/events", f.key, "", publishBody)
	if _, err := io.WriteString(c, reqs); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i, want := range []string{`"delivery_count":1`, `"delivery_count":1`, `"events":[{`, `"webhooks":[{`, `"delivery_count":1`} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Fatalf("response %d: %d %s, want 200 with %s", i, resp.StatusCode, body, want)
		}
		if resp.Header.Get("Content-Type") != "application/json; charset=utf-8" || resp.Header.Get("Date") == "" ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.ContentLength != int64(len(body)) {
			t.Fatalf("response %d: headers %v, Content-Length %d for %d bytes", i, resp.Header, resp.ContentLength, len(body))
		}
	}
	if n := f.fast.Served() - before; n != 3 {
		t.Fatalf("the fast path served %d requests, want the 3 before the list", n)
	}
	events := f.call("GET", "/v1beta/events", nil).must(t, http.StatusOK)
	if got := len(events.body["events"].([]any)); got != 5 {
		t.Fatalf("%d events stored, want 5", got)
	}
}

// Whatever the request, a server with the fast path answers as net/http
// alone does: the same status, headers (but Date) and body, and both keep
// or close the connection alike. Requests the fast path leaves alone
// (malformed, unusual, other routes) go to net/http untouched.
func TestFastPathAnswersAsNetHTTP(t *testing.T) {
	t.Parallel()
	f := setup(t, func(d *api.Deps) { d.MaxPublishBodyBytes = 400 << 10 })
	f.createWebhook("h")
	// The same API (same store and keys) behind net/http alone.
	plain := httptest.NewServer(f.srv.Config.Handler)
	t.Cleanup(plain.Close)

	idem := `{"type":"batch.succeeded","data":{},"idempotency_key":"k1"}`
	big := `{"type":"batch.succeeded","data":{"pad":"` + strings.Repeat("x", 300<<10) + `"}}`
	huge := `{"type":"batch.succeeded","data":{"pad":"` + strings.Repeat("x", 500<<10) + `"}}`
	// Keys k1 and k2 used once before: both servers answer repeats
	// (Idempotent-Replayed), not one a fresh publish and the other its repeat.
	f.call("POST", "/v1beta/events", idem).must(t, http.StatusOK)
	f.call("POST", "/v1beta/events", strings.Replace(idem, "k1", "k2", 1)).must(t, http.StatusOK)
	cases := map[string]string{
		"publish":              rawRequest("POST", "/v1beta/events", f.key, "", publishBody),
		"idempotent":           rawRequest("POST", "/v1beta/events", f.key, "", idem),
		"batch":                rawRequest("POST", "/v1beta/events:batchPublish", f.key, "", `{"events":[`+publishBody+`]}`),
		"idempotent batch":     rawRequest("POST", "/v1beta/events:batchPublish", f.key, "", `{"events":[`+idem+`]}`),
		"big body":             rawRequest("POST", "/v1beta/events", f.key, "", big),
		"too large":            rawRequest("POST", "/v1beta/events", f.key, "", huge),
		"bad key":              rawRequest("POST", "/v1beta/events", "nope", "", publishBody),
		"bad key big body":     rawRequest("POST", "/v1beta/events", "nope", "", big),
		"bad JSON":             rawRequest("POST", "/v1beta/events", f.key, "", `{"type":`),
		"unknown type":         rawRequest("POST", "/v1beta/events", f.key, "", `{"type":"no.such","data":{}}`),
		"empty body":           rawRequest("POST", "/v1beta/events", f.key, "", ""),
		"empty batch":          rawRequest("POST", "/v1beta/events:batchPublish", f.key, "", `{"events":[]}`),
		"connection close":     rawRequest("POST", "/v1beta/events", f.key, "Connection: close\r\n", publishBody),
		"connection upgrade":   rawRequest("POST", "/v1beta/events", f.key, "Connection: Upgrade\r\nUpgrade: h2c\r\n", publishBody),
		"lower-case names":     "POST /v1beta/events HTTP/1.1\r\nhost: x\r\nx-goog-api-key: " + f.key + "\r\ncontent-length: " + fmt.Sprint(len(publishBody)) + "\r\n\r\n" + publishBody,
		"idempotency header":   rawRequest("POST", "/v1beta/events", f.key, "Idempotency-Key: k2\r\n", publishBody),
		"idempotency conflict": rawRequest("POST", "/v1beta/events", f.key, "Idempotency-Key: k3\r\n", idem),
		"no host":              "POST /v1beta/events HTTP/1.1\r\nx-goog-api-key: " + f.key + "\r\nContent-Length: 2\r\n\r\n{}",
		"two hosts":            rawRequest("POST", "/v1beta/events", f.key, "Host: other\r\n", publishBody),
		"two lengths":          rawRequest("POST", "/v1beta/events", f.key, "Content-Length: 3\r\n", publishBody),
		"chunked":              "POST /v1beta/events HTTP/1.1\r\nHost: x\r\nx-goog-api-key: " + f.key + "\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(publishBody), publishBody),
		"expect continue":      rawRequest("POST", "/v1beta/events", f.key, "Expect: 100-continue\r\n", publishBody),
		"http 1.0":             strings.Replace(rawRequest("POST", "/v1beta/events", f.key, "", publishBody), "HTTP/1.1", "HTTP/1.0", 1),
		"key in query":         "POST /v1beta/events?key=" + f.key + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + fmt.Sprint(len(publishBody)) + "\r\n\r\n" + publishBody,
		"unknown query":        rawRequest("POST", "/v1beta/events?dry_run=1", f.key, "", publishBody),
		"unknown batch query":  rawRequest("POST", "/v1beta/events:batchPublish?x=1", f.key, "", `{"events":[`+publishBody+`]}`),
		"folded header":        rawRequest("POST", "/v1beta/events", f.key, "X-A: b\r\n c\r\n", publishBody),
		"bare LF":              strings.ReplaceAll(rawRequest("POST", "/v1beta/events", f.key, "", publishBody), "\r\n", "\n"),
		"space before colon":   rawRequest("POST", "/v1beta/events", f.key, "X-A : b\r\n", publishBody),
		"control in value":     rawRequest("POST", "/v1beta/events", f.key, "X-A: b\x01c\r\n", publishBody),
		"bad host":             strings.Replace(rawRequest("POST", "/v1beta/events", f.key, "", publishBody), "Host: example.com", "Host: a b", 1),
		"unclean path":         rawRequest("POST", "/v1beta//events", f.key, "", publishBody),
		"GET on publish path":  rawRequest("GET", "/v1beta/events", f.key, "", ""),
		"other route":          rawRequest("POST", "/v1beta/webhooks", f.key, "", `{"name":"x"}`),
		"trailing spaces":      rawRequest("POST", "/v1beta/events", f.key, "X-A:   b  \r\n", publishBody),
	}
	names := make([]string, 0, len(cases))
	for name := range cases {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		req := cases[name]
		want := exchange(t, plain, req)
		got := exchange(t, f.srv, req)
		if got != want {
			t.Errorf("%s:\nnet/http:  %s\nfast path: %s", name, want, got)
		}
	}
}

// exchange sends req on a new connection and describes the answer: the
// status, the headers but Date, the body with event ids and times blanked,
// and whether the server then closed the connection.
func exchange(t *testing.T, srv *httptest.Server, req string) string {
	t.Helper()
	c := dial(t, srv)
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "no response: " + err.Error()
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Header.Del("Date")
	var hdr []string
	for k, v := range resp.Header {
		hdr = append(hdr, k+"="+strings.Join(v, ","))
	}
	slices.Sort(hdr)
	closed := "open"
	if resp.Close {
		closed = "closes"
	}
	// Ids and times differ between two publishes; their shapes do not.
	s := string(body)
	for _, field := range []string{`"id":"`, `"create_time":"`, `"timestamp":"`} {
		s = blankValues(s, field)
	}
	return fmt.Sprintf("%d %v %s %s", resp.StatusCode, hdr, closed, s)
}

// blankValues replaces the string value after every field in s by "…".
func blankValues(s, field string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, field)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+len(field)])
		s = s[i+len(field):]
		if j := strings.IndexByte(s, '"'); j >= 0 {
			b.WriteString("…")
			s = s[j:]
		}
	}
}

// Shutdown closes a fast-path connection waiting for its next request at
// once, lets one in the middle of a request finish it (answered with
// Connection: close), and Wait returns once both are gone.
func TestFastPathShutdown(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if string(body) == "block" {
			close(entered)
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	fast := api.NewFastListener(ln, srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(fast) }()
	addr := ln.Addr().String()
	send := func(c net.Conn, body string) {
		t.Helper()
		if _, err := fmt.Fprintf(c, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
			t.Fatal(err)
		}
	}
	conn := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		return c, bufio.NewReader(c)
	}
	idle, idleR := conn()
	send(idle, "x")
	if resp, err := http.ReadResponse(idleR, nil); err != nil || resp.StatusCode != 200 || resp.Close {
		t.Fatalf("first response: %v %v", resp, err)
	} else {
		_, _ = io.ReadAll(resp.Body)
	}
	busy, busyR := conn()
	send(busy, "block")
	<-entered

	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	// The idle connection is closed, with no answer.
	if _, err := idleR.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: read %v, want EOF", err)
	}
	close(release)
	resp, err := http.ReadResponse(busyR, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "ok" || !resp.Close {
		t.Fatalf("busy connection: %d %q close=%v, want 200 ok, closing", resp.StatusCode, body, resp.Close)
	}
	if err := fast.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	if fast.Served() != 2 {
		t.Fatalf("served %d, want 2", fast.Served())
	}
}

// The fast path keeps net/http's header timeout: a connection whose
// request head stops coming is closed, on its first request and between
// requests alike.
func TestFastPathHeaderTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}),
		ReadHeaderTimeout: 50 * time.Millisecond, IdleTimeout: time.Minute}
	fast := api.NewFastListener(ln, srv)
	go func() { _ = srv.Serve(fast) }()
	t.Cleanup(func() { _ = srv.Close(); _ = fast.Wait(context.Background()) })
	for _, before := range []string{"", "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(c)
		if before != "" {
			_, _ = io.WriteString(c, before)
			if _, err := http.ReadResponse(br, nil); err != nil {
				t.Fatal(err)
			}
		}
		_, _ = io.WriteString(c, "POST /v1/events HTTP/1.1\r\nHost: x\r\n")
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("after %q: read %v, want EOF (closed by the server)", before, err)
		}
		_ = c.Close()
	}
}

// A publish's request carries what net/http gives a handler: the
// promoted Host, the canonical header names, the remote address, the
// server in its context.
func TestFastPathRequest(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 1)
	srv := &http.Server{}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		got <- r
	})
	c, fast := serveFast(t, srv)
	_, _ = io.WriteString(c, "POST /v1beta/events:batchPublish HTTP/1.1\r\nhost: h:1\r\nx-goog-api-key: k\r\nX-Multi: a\r\nx-multi: b\r\nContent-Length: 3\r\n\r\nabc")
	r := <-got
	body, _ := io.ReadAll(r.Body)
	if r.Host != "h:1" || r.Header.Get("Host") != "" || r.Header.Get("X-Goog-Api-Key") != "k" ||
		!slices.Equal(r.Header["X-Multi"], []string{"a", "b"}) || r.URL.Path != "/v1beta/events:batchPublish" ||
		r.RequestURI != "/v1beta/events:batchPublish" || r.Method != "POST" || r.ContentLength != 3 || string(body) != "abc" ||
		r.RemoteAddr != c.LocalAddr().String() || r.Context().Value(http.ServerContextKey) != srv || !r.ProtoAtLeast(1, 1) {
		t.Fatalf("request %+v", r)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 || fast.Served() != 1 {
		t.Fatalf("response %v %v, served %d", resp, err, fast.Served())
	}
	// The next request on the connection has its own headers only (the
	// fast path reuses the header map).
	_, _ = io.WriteString(c, "POST /v1/events HTTP/1.1\r\nHost: h2\r\nX-Other: o\r\nContent-Length: 0\r\n\r\n")
	r = <-got
	if r.Host != "h2" || len(r.Header) != 2 || r.Header.Get("X-Other") != "o" || r.Header.Get("Content-Length") != "0" {
		t.Fatalf("second request's header %v, host %q", r.Header, r.Host)
	}
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("second response %v %v", resp, err)
	}
}

// BenchmarkServePublish measures a publish-shaped request through a real
// loopback connection, served by net/http alone and with the fast path,
// with a handler that reads the body and answers JSON as the publish
// handler does — so the difference is the HTTP server's own work (the
// client's, the same in both, is in the figure too).
func BenchmarkServePublish(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		api.WriteJSON(w, http.StatusOK, nil)
	})
	body := `{"type":"batch.succeeded","data":{"pad":"` + strings.Repeat("x", 560) + `"}}`
	req := []byte(rawRequest("POST", "/v1beta/events", "k", "User-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n", body))
	for _, fast := range []bool{false, true} {
		name := "net-http"
		if fast {
			name = "fast-path"
		}
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
				WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
			var l net.Listener = ln
			if fast {
				l = api.NewFastListener(ln, srv)
			}
			go func() { _ = srv.Serve(l) }()
			defer srv.Close()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			b.SetBytes(int64(len(req)))
			b.ReportAllocs()
			// CPU time, not wall time: a loaded machine makes the wall time
			// of a ping-pong mostly waiting (zero where procstat cannot
			// measure it).
			cpu0 := procstat.CPUTime()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				if resp.StatusCode != http.StatusOK {
					b.Fatal(resp.Status)
				}
			}
			b.ReportMetric(float64(procstat.CPUTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// serveFast serves srv through a FastListener on a loopback port until
// the test ends, and returns a connection to it (closed at the end too)
// and the listener.
func serveFast(t *testing.T, srv *http.Server) (net.Conn, *api.FastListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fast := api.NewFastListener(ln, srv)
	go func() { _ = srv.Serve(fast) }()
	t.Cleanup(func() { _ = srv.Close(); _ = fast.Wait(context.Background()) })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, fast
}

// blockingHandler answers "ok " and the request's body; a request whose
// body is "block" closes entered and waits for release to be closed first.
func blockingHandler() (h http.Handler, entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if string(body) == "block" {
			close(entered)
			<-release
		}
		_, _ = io.WriteString(w, "ok "+string(body))
	}), entered, release
}
