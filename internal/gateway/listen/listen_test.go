package listen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/longhook/longhook/internal/gateway"
	"github.com/longhook/longhook/webhook"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The only exception: the Pub/Sub client links OpenCensus, whose
		// view worker starts at init and never ends.
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

const token = "listen-token-0123456789"

type fixture struct {
	gw     *gateway.Gateway
	srv    *httptest.Server // senders post here
	stream *httptest.Server // listen connects here; cut by the test
	secret webhook.Secret
	// secretText is secret as the source's hmac_secrets has it.
	secretText string
	mu         sync.Mutex
	got        map[string]int
	headers    http.Header
	local      *httptest.Server
	// answer, when set, is the local receiver's status for the n-th
	// request (1, 2, …) carrying webhook-id id; unset, 200.
	answer func(id string, n int) int
	// verify, when set, is the local receiver's check of a request's
	// signature: a request it refuses is answered 400 and not counted.
	verify func(h http.Header, body []byte) error
}

func setup(t *testing.T, opts ...gateway.Option) *fixture {
	t.Helper()
	secretText, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := webhook.ParseSecret(secretText)
	g, err := gateway.NewGateway(context.Background(), gateway.Config{
		DataDir: t.TempDir(),
		Sources: []gateway.SourceConfig{{
			Name: "s", Verify: gateway.VerifyConfig{HMACSecrets: []string{secretText}}, ListenTokens: []string{token},
		}},
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{gw: g, srv: httptest.NewServer(g.Handler()), stream: httptest.NewServer(g.Handler()), secret: secret, secretText: secretText, got: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	f.local = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		if f.verify != nil {
			if err := f.verify(r.Header, body); err != nil {
				f.mu.Unlock()
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		id := r.Header.Get(webhook.HeaderID)
		f.got[id]++
		f.headers = r.Header.Clone()
		status := http.StatusOK
		if f.answer != nil {
			status = f.answer(id, f.got[id])
		}
		f.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(func() {
		f.local.Close()
		g.Drain()
		f.srv.Close()
		f.stream.Close()
		cancel()
		<-done
		_ = g.Close()
	})
	return f
}

func (f *fixture) send(t *testing.T, id string) {
	t.Helper()
	f.sendAt(t, id, time.Now())
}

// sendAt posts an event signed at now.
func (f *fixture) sendAt(t *testing.T, id string, now time.Time) {
	t.Helper()
	body := []byte(`{"type":"batch.succeeded","data":{"id":"` + id + `"}}`)
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/hooks/s", bytes.NewReader(body))
	req.Header.Set(webhook.HeaderID, id)
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(f.secret, id, now, body))
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Error(err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("send %s: %d", id, resp.StatusCode)
	}
}

func (f *fixture) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

// startListen runs RunListen until the returned stop is called.
func startListen(t *testing.T, f *fixture, state string, extra ...string) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	args := append([]string{"--from", f.stream.URL + gateway.ListenPath + "s", "--forward-to", f.local.URL,
		"--token", token, "--state", state, "--log-level", "warn"}, extra...)
	go func() { done <- RunListen(ctx, args, func(string) string { return "" }, io.Discard, io.Discard) }()
	return func() error {
		cancel()
		return <-done
	}
}

// The connection is cut several times mid-stream; the local receiver
// ends with every event exactly once. A restart resumes from the state
// file.
func TestListenResumesAfterCuts(t *testing.T) {
	t.Parallel()
	f := setup(t)
	state := filepath.Join(t.TempDir(), "state.json")
	stop := startListen(t, f, state, "--after", "0")

	const n = 300
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range n {
			f.send(t, fmt.Sprintf("msg_listen_%d", i))
		}
	}()
	for cut := 1; cut <= 5; cut++ {
		waitFor(t, 20*time.Second, "progress before a cut", func() bool { return f.count() >= cut*n/6 })
		f.stream.CloseClientConnections() // cuts the stream mid-flight
	}
	<-sent
	waitFor(t, 30*time.Second, "every event at the local receiver", func() bool { return f.count() == n })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Events that arrive while listen is down are delivered after restart.
	for i := n; i < n+20; i++ {
		f.send(t, fmt.Sprintf("msg_listen_%d", i))
	}
	stop = startListen(t, f, state)
	waitFor(t, 20*time.Second, "events sent while listen was down", func() bool { return f.count() == n+20 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, k := range f.got {
		if k != 1 {
			t.Errorf("%s forwarded %d times", id, k)
		}
	}
	if f.headers.Get(webhook.HeaderSignature) == "" || f.headers.Get(gateway.HeaderSource) != "s" {
		t.Errorf("forwarded headers: %v", f.headers)
	}
}

// An event listen relays more than the receiver's tolerance (5 minutes)
// after the sender signed it — received while listen was stopped, or
// replayed with --after — reaches the local receiver with a signature it
// accepts: the gateway signs a Standard Webhooks event again, with the
// source's secrets, when it streams it. It used to pass the sender's
// headers on, which a receiver verifying as usual refuses as too old, and
// listen then logged the 4xx and skipped the event.
func TestListenRelaysEventsOlderThanTheTolerance(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64 // the gateway's clock minus the real one
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	f := setup(t, gateway.WithClock(clock))
	local, err := webhook.NewVerifier([]string{f.secretText}) // the local app's verifier, on the real clock
	if err != nil {
		t.Fatal(err)
	}
	f.verify = func(h http.Header, body []byte) error { return local.Verify(h, body) }

	// Received by the gateway ten minutes ago, signed then by the sender.
	offset.Store(int64(-10 * time.Minute))
	f.sendAt(t, "msg_old_1", clock())
	f.sendAt(t, "msg_old_2", clock())
	offset.Store(0)

	state := filepath.Join(t.TempDir(), "state.json")
	stop := startListen(t, f, state, "--after", "0")
	f.send(t, "msg_new") // behind the old ones: it arrives once they were handled
	waitFor(t, 20*time.Second, "msg_new at the local receiver", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.got["msg_new"] == 1
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range []string{"msg_old_1", "msg_old_2", "msg_new"} {
		if f.got[id] != 1 {
			t.Errorf("%s accepted %d times by the local receiver, want 1", id, f.got[id])
		}
	}
}

// A signature the gateway made for an event when it streamed it is not
// used once it is nearly as old as a receiver's tolerance: listen
// reconnects at that event, and the gateway signs it again. Here the
// gateway's clock falls ten minutes behind between the stream's start (the
// clock listen measures against) and the event, so the first signature
// reads as ten minutes old.
func TestListenReconnectsForAFreshSignature(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64 // the gateway's clock minus the real one
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	f := setup(t, gateway.WithClock(clock))
	local, err := webhook.NewVerifier([]string{f.secretText}, webhook.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	f.verify = func(h http.Header, body []byte) error { return local.Verify(h, body) }
	var sessions atomic.Int64
	counted := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sessions.Add(1)
		f.gw.Handler().ServeHTTP(w, r)
	}))
	defer counted.Close()
	defer counted.CloseClientConnections()

	state := filepath.Join(t.TempDir(), "state.json")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunListen(ctx, []string{"--from", counted.URL + gateway.ListenPath + "s", "--forward-to", f.local.URL,
			"--token", token, "--state", state, "--log-level", "error"},
			func(string) string { return "" }, io.Discard, io.Discard)
	}()
	// The state file is written once the stream's ready event (the
	// gateway's clock, the starting position) was handled.
	waitFor(t, 20*time.Second, "listen connected", func() bool {
		_, err := os.Stat(state)
		return err == nil
	})
	offset.Store(int64(-10 * time.Minute))
	f.sendAt(t, "msg_late", clock())
	waitFor(t, 20*time.Second, "msg_late at the local receiver", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.got["msg_late"] == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := sessions.Load(); n < 2 {
		t.Errorf("%d stream sessions: listen forwarded a signature it held as stale instead of reconnecting", n)
	}
}

// An event larger than listen reads stops listen with an error naming the
// position before it and how to skip it. It used to end the session and
// reconnect at once (the session had made progress, so without backoff),
// reading the same event four times a second for ever, with every later
// event held behind it. Not parallel: it lowers maxEventLine.
func TestListenStopsAtAnEventTooLarge(t *testing.T) {
	defer func(n int) { maxEventLine = n }(maxEventLine)
	maxEventLine = 64 << 10
	f := setup(t)
	f.send(t, "msg_small")
	body := []byte(`{"type":"big","data":"` + strings.Repeat("x", 100<<10) + `"}`)
	now := time.Now()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/hooks/s", bytes.NewReader(body))
	req.Header.Set(webhook.HeaderID, "msg_big")
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(f.secret, "msg_big", now, body))
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("send msg_big: %d", resp.StatusCode)
	}
	f.send(t, "msg_after")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = RunListen(ctx, []string{"--from", f.stream.URL + gateway.ListenPath + "s", "--forward-to", f.local.URL,
		"--token", token, "--state", filepath.Join(t.TempDir(), "state.json"), "--after", "0", "--log-level", "error"},
		func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("listen kept reading the event it cannot read (err %v)", err)
	}
	if !strings.Contains(err.Error(), "after position 1") || !strings.Contains(err.Error(), "--after") {
		t.Errorf("error %q does not name the position and how to skip the event", err)
	}
	if f.count() != 1 {
		t.Errorf("%d events forwarded, want msg_small only", f.count())
	}
}

// A stream that connects and then fails the same way every time (here an
// event listen cannot parse) is retried with a growing backoff. listen used
// to count any connected session as progress and reconnect every 250 ms
// for ever. Five sessions take 250+500+1000+2000 ms of backoff now, about
// one second before.
func TestListenBacksOffFromASessionThatFailsAtOnce(t *testing.T) {
	t.Parallel()
	var sessions atomic.Int64
	first := make(chan time.Time, 1)
	fifth := make(chan time.Time, 1)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch sessions.Add(1) {
		case 1:
			first <- time.Now()
		case 5:
			fifth <- time.Now()
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "id: 0\nevent: ready\ndata: {\"source\":\"s\",\"after\":0}\n\nid: 1\nevent: webhook\ndata: {not json\n\n")
	}))
	defer bad.Close()
	local := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer local.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunListen(ctx, []string{"--from", bad.URL + gateway.ListenPath + "s", "--forward-to", local.URL,
			"--token", token, "--state", filepath.Join(t.TempDir(), "state.json"), "--after", "0", "--log-level", "error"},
			func(string) string { return "" }, io.Discard, io.Discard)
	}()
	start := <-first
	var end time.Time
	select {
	case end = <-fifth:
	case <-time.After(30 * time.Second):
		t.Fatal("no fifth session within 30 s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := end.Sub(start); d < 3*time.Second {
		t.Errorf("five sessions in %s: listen reconnected without backing off", d)
	}
}

// A 4xx from the local receiver is its verdict on that event: it is
// reported and passed, not retried forever in front of every later event;
// a 5xx, 408 or 429 is retried until the receiver takes the event.
func TestListenPassesAnEventTheReceiverRejects(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.answer = func(id string, n int) int {
		switch {
		case id == "msg_rejected":
			return http.StatusBadRequest
		case id == "msg_gone":
			return http.StatusGone
		case id == "msg_busy" && n == 1:
			return http.StatusTooManyRequests
		case id == "msg_down" && n == 1:
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	state := filepath.Join(t.TempDir(), "state.json")
	stop := startListen(t, f, state, "--after", "0")
	ids := []string{"msg_rejected", "msg_busy", "msg_gone", "msg_down", "msg_after"}
	for _, id := range ids {
		f.send(t, id)
	}
	waitFor(t, 30*time.Second, "the events behind the rejected ones", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.got["msg_after"] == 1
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	want := map[string]int{"msg_rejected": 1, "msg_busy": 2, "msg_gone": 1, "msg_down": 2, "msg_after": 1}
	for id, n := range want {
		if f.got[id] != n {
			t.Errorf("%s posted %d times, want %d", id, f.got[id], n)
		}
	}
}

// A position this gateway never handed out (a state file from another
// inbox: a gateway set up again) is refused with 400 naming the newest
// position, and listen stops with the state file named — it used to wait
// silently, skipping every event until the sequence caught up.
func TestListenPositionBeyondTheNewest(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.send(t, "msg_first")
	f.send(t, "msg_second")
	last, err := f.gw.Inbox().LastSeq(context.Background())
	if err != nil || last == 0 {
		t.Fatalf("LastSeq: %d, %v", last, err)
	}
	for _, c := range []struct {
		after string
		want  int
	}{{"0", 200}, {strconv.FormatInt(last, 10), 200}, {strconv.FormatInt(last+1, 10), 400}, {"99999", 400}} {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.stream.URL+gateway.ListenPath+"s?after="+c.after, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := f.stream.Client().Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		body := ""
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		}
		cancel()
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("after=%s: %d, want %d", c.after, resp.StatusCode, c.want)
		}
		if c.want == 400 && (!strings.Contains(body, `"INVALID_ARGUMENT"`) || !strings.Contains(body, "newest position "+strconv.FormatInt(last, 10))) {
			t.Errorf("after=%s: %s, want the error envelope naming the newest position", c.after, body)
		}
	}

	state := filepath.Join(t.TempDir(), "state.json")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = RunListen(ctx, []string{"--from", f.stream.URL + gateway.ListenPath + "s", "--forward-to", f.local.URL,
		"--token", token, "--state", state, "--after", "99999"}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), state) {
		t.Fatalf("listen from a position beyond the newest: %v, want a 400 error naming the state file", err)
	}
	if f.count() != 0 {
		t.Errorf("%d events forwarded", f.count())
	}
}

func TestListenRejectsBadToken(t *testing.T) {
	t.Parallel()
	f := setup(t)
	err := RunListen(context.Background(), []string{"--from", f.srv.URL + gateway.ListenPath + "s", "--forward-to", f.local.URL,
		"--token", "wrong-token-wrong-token", "--state", filepath.Join(t.TempDir(), "s.json")},
		func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("bad token: %v, want a 401 error", err)
	}
}

// The listen stream takes its token in "Authorization: Bearer <token>",
// the scheme matched in any case (RFC 9110 §11.1: auth schemes are
// case-insensitive), so a client that writes "bearer" is not refused;
// another scheme, no token or a wrong token is 401.
func TestListenStreamBearerScheme(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, c := range []struct {
		header string
		want   int
	}{
		{"Bearer " + token, 200},
		{"bearer " + token, 200},
		{"BEARER " + token, 200},
		{"Basic " + token, 401},
		{"Bearer", 401},
		{"Bearer ", 401},
		{"bearer wrong-token-wrong-token", 401},
		{token, 401},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.stream.URL+gateway.ListenPath+"s", nil)
		req.Header.Set("Authorization", c.header)
		resp, err := f.stream.Client().Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if resp.StatusCode != c.want {
			t.Errorf("Authorization %q: %d, want %d", c.header, resp.StatusCode, c.want)
		}
		cancel()
		resp.Body.Close()
	}
}
