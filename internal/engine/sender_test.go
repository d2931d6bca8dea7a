package engine

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

func devSender(t *testing.T, cfg SenderConfig) *Sender {
	t.Helper()
	cfg.Policy = core.AddressPolicy{Dev: true}
	s := NewSender(cfg)
	t.Cleanup(s.CloseIdle)
	return s
}

func failureKind(t *testing.T, res Result) core.FailureKind {
	t.Helper()
	f, ok := res.Outcome.(*core.Failure)
	if !ok {
		t.Fatalf("outcome = %#v, want a failure", res.Outcome)
	}
	return f.Kind
}

// The request reaches the receiver as sent: method, body, header names in
// the case given (webhook-id, not Webhook-Id), the user agent and the
// path exactly as configured.
func TestSenderSendsRequestAsGiven(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, path, ua, ctype string
		body                    []byte
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.RequestURI, r.UserAgent(), r.Header.Get("Content-Type"), b}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	s := devSender(t, SenderConfig{UserAgent: "longhook/test"})
	res := s.Send(context.Background(), Request{URI: srv.URL + "/a//b/../c?x=1", Body: []byte(`{"k":1}`),
		Headers: [][2]string{{"webhook-id", "msg_1"}, {"webhook-timestamp", "1700000000"}, {"webhook-signature", "v1,abc"}}})
	if _, ok := res.Outcome.(core.Success); !ok || res.StatusCode != 204 {
		t.Fatalf("outcome %#v status %d, want success 204", res.Outcome, res.StatusCode)
	}
	g := <-got
	if g.method != http.MethodPost || string(g.body) != `{"k":1}` || g.ua != "longhook/test" || g.ctype != "application/json" {
		t.Errorf("got %s %q ua=%q ctype=%q", g.method, g.body, g.ua, g.ctype)
	}
	if g.path != "/a//b/../c?x=1" {
		t.Errorf("path %q was normalised, want it as configured", g.path)
	}
}

// Header names go on the wire in the case given.
func TestSenderKeepsHeaderCase(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	head := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 8192)
		var req []byte
		for !bytes.Contains(req, []byte("\r\n\r\n")) {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			req = append(req, buf[:n]...)
		}
		head <- string(req)
		_, _ = c.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
	}()
	s := devSender(t, SenderConfig{})
	res := s.Send(context.Background(), Request{URI: "http://" + ln.Addr().String() + "/h", Body: []byte("{}"),
		Headers: [][2]string{{"webhook-id", "msg_1"}}})
	if res.StatusCode != 204 {
		t.Fatalf("status %d (%s)", res.StatusCode, res.Err)
	}
	if h := <-head; !strings.Contains(h, "\r\nwebhook-id: msg_1\r\n") {
		t.Errorf("request head does not carry lowercase webhook-id:\n%s", h)
	}
}

// Only the first 4 KiB of a response are recorded; a huge body does not
// stall the attempt.
func TestSenderCapsResponseBody(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		chunk := bytes.Repeat([]byte("e"), 64<<10)
		for range 64 { // 4 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	s := devSender(t, SenderConfig{})
	res := s.Send(context.Background(), Request{URI: srv.URL, Body: []byte("{}")})
	if failureKind(t, res) != core.FailHTTPStatus || res.StatusCode != 500 {
		t.Fatalf("outcome %#v status %d", res.Outcome, res.StatusCode)
	}
	if len(res.Response) != MaxResponseBytes {
		t.Errorf("recorded %d response bytes, want %d", len(res.Response), MaxResponseBytes)
	}
	// The connection was given up, not the sender: the next attempt works.
	res = s.Send(context.Background(), Request{URI: srv.URL, Body: []byte("{}")})
	if res.StatusCode != 500 {
		t.Errorf("second attempt: status %d (%s)", res.StatusCode, res.Err)
	}
}

// Without the dev policy a loopback destination is refused at dial time.
func TestSenderBlocksPrivateAddresses(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	s := NewSender(SenderConfig{}) // production policy
	defer s.CloseIdle()
	res := s.Send(context.Background(), Request{URI: srv.URL, Body: []byte("{}")})
	if k := failureKind(t, res); k != core.FailBlocked {
		t.Errorf("kind = %v (%s), want blocked", k, res.Err)
	}
	if hits.Load() != 0 {
		t.Error("the blocked destination was reached")
	}
}

// TestSenderBlocksTransitionAddresses (issue 13, defect 4): IPv6
// addresses that lead to a private IPv4 address through NAT64, 6to4,
// Teredo or the IPv4-compatible form are refused by the dial guard.
func TestSenderBlocksTransitionAddresses(t *testing.T) {
	t.Parallel()
	s := NewSender(SenderConfig{}) // production policy
	defer s.CloseIdle()
	for _, addr := range []string{
		"64:ff9b::a9fe:a9fe",                   // NAT64 → 169.254.169.254
		"64:ff9b:1::a9fe:a9fe",                 // local-use NAT64
		"2002:a9fe:a9fe::1",                    // 6to4 → 169.254.169.254
		"2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo, client 127.0.0.1
		"::a9fe:a9fe",                          // IPv4-compatible
		"::ffff:0:a9fe:a9fe",                   // IPv4-translated
	} {
		res := s.Send(context.Background(), Request{URI: "http://[" + addr + "]:9/hook", Body: []byte("{}")})
		if k := failureKind(t, res); k != core.FailBlocked {
			t.Errorf("%s: kind = %v (%s), want blocked", addr, k, res.Err)
		}
	}
}

func TestSenderInvalidURI(t *testing.T) {
	t.Parallel()
	s := devSender(t, SenderConfig{})
	for _, uri := range []string{"ftp://example.com/x", "not a uri", "http:///nohost"} {
		if k := failureKind(t, s.Send(context.Background(), Request{URI: uri})); k != core.FailInvalid {
			t.Errorf("%q: kind %v, want invalid", uri, k)
		}
	}
}

// The attempt deadline is the earlier of AttemptTimeout and ctx's.
func TestSenderTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	s := devSender(t, SenderConfig{AttemptTimeout: 200 * time.Millisecond})
	res := s.Send(context.Background(), Request{URI: srv.URL, Body: []byte("{}")})
	if k := failureKind(t, res); k != core.FailTimeout {
		t.Errorf("kind %v (%s), want timeout", k, res.Err)
	}
	s = devSender(t, SenderConfig{AttemptTimeout: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if k := failureKind(t, s.Send(ctx, Request{URI: srv.URL, Body: []byte("{}")})); k != core.FailTimeout {
		t.Errorf("ctx deadline: kind %v, want timeout", k)
	}
}

// Abort ends an attempt in flight at once.
func TestSenderAbort(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
	}))
	defer srv.Close()
	defer close(release)
	s := devSender(t, SenderConfig{AttemptTimeout: time.Hour})
	done := make(chan Result, 1)
	go func() { done <- s.Send(context.Background(), Request{URI: srv.URL, Body: []byte("{}")}) }()
	<-arrived
	s.Abort()
	select {
	case res := <-done:
		if _, ok := res.Outcome.(*core.Failure); !ok {
			t.Errorf("outcome %#v, want a failure", res.Outcome)
		}
	case <-time.After(waitLimit):
		t.Fatal("Abort did not end the attempt")
	}
}

// A kept-alive connection the receiver closed while idle is retried once
// on a new connection rather than failing the attempt.
func TestSenderRetriesStaleKeepAlive(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Start()
	defer srv.Close()
	s := devSender(t, SenderConfig{})
	if res := s.Send(context.Background(), Request{URI: srv.URL, Body: []byte("{}")}); res.StatusCode != 204 {
		t.Fatalf("first: %d %s", res.StatusCode, res.Err)
	}
	srv.CloseClientConnections() // the pooled connection is now dead
	if res := s.Send(context.Background(), Request{URI: srv.URL, Body: []byte("{}")}); res.StatusCode != 204 {
		t.Fatalf("after the receiver dropped the idle connection: %d %s", res.StatusCode, res.Err)
	}
}

func TestClassifyErrorBlocked(t *testing.T) {
	t.Parallel()
	if f := classifyError(context.Background(), errors.Join(errBlocked)); f.Kind != core.FailBlocked {
		t.Errorf("kind %v", f.Kind)
	}
}

// https destinations: delivered when the certificate verifies, a failed
// attempt with a clear error when it does not.
func TestSenderTLS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	s := devSender(t, SenderConfig{TLS: &tls.Config{RootCAs: pool}})
	if res := s.Send(context.Background(), Request{URI: srv.URL, Body: []byte("{}")}); res.StatusCode != 204 {
		t.Fatalf("trusted certificate: status %d (%s)", res.StatusCode, res.Err)
	}
	s = devSender(t, SenderConfig{}) // system roots: the test certificate is unknown
	res := s.Send(context.Background(), Request{URI: srv.URL, Body: []byte("{}")})
	if k := failureKind(t, res); k != core.FailConnection || !strings.Contains(res.Err, "certificate") {
		t.Errorf("untrusted certificate: kind %v, error %q", k, res.Err)
	}
}
