package listen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/secretbox"
	"github.com/longhook/longhook/internal/store/sqlite"
	"github.com/longhook/longhook/webhook"
)

// serveFixture is a serve API (real SQLite store) with one webhook, a
// proxy in front of its listen stream that cuts every connection after a
// few events, and a local receiver that verifies signatures.
type serveFixture struct {
	t       *testing.T
	store   *sqlite.Store
	project string
	api     *httptest.Server
	proxy   *httptest.Server
	local   *httptest.Server
	cuts    atomic.Int64
	key     string
	hook    string

	mu       sync.Mutex
	relayed  map[string]bool // SSE ids the proxy relayed
	attempts map[string]int  // webhook-id → requests
	got      map[string]int  // webhook-id → 2xx answers
	bad      []string        // verification failures
}

func setupServe(t *testing.T, cutAfter int) *serveFixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "longhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	master := make([]byte, secretbox.KeySize)
	_, _ = rand.Read(master)
	box, err := secretbox.New(master)
	if err != nil {
		t.Fatal(err)
	}
	f := &serveFixture{t: t, store: st, attempts: map[string]int{}, got: map[string]int{}, relayed: map[string]bool{}}
	now := time.Now()
	f.project = core.NewID()
	if err := st.CreateProject(ctx, core.Project{ID: f.project, Name: "p", CreateTime: now}); err != nil {
		t.Fatal(err)
	}
	plain, digest, hint := api.NewAPIKey()
	if err := st.CreateAPIKey(ctx, core.APIKey{ID: core.NewID(), ProjectID: f.project, Name: "k", Digest: digest, Hint: hint, CreateTime: now}); err != nil {
		t.Fatal(err)
	}
	f.key = plain
	f.api = httptest.NewServer(api.NewServer(api.Deps{Store: st, Cipher: box}))
	t.Cleanup(f.api.Close)

	var created struct {
		ID     string `json:"id"`
		Secret string `json:"new_signing_secret"`
	}
	f.call("POST", "/v1beta/webhooks", map[string]any{
		"name": "l", "uri": "https://example.com/hook", "subscribed_events": []string{"batch.succeeded"},
	}, &created)
	f.hook = created.ID
	verifier, err := webhook.NewVerifier([]string{created.Secret})
	if err != nil {
		t.Fatal(err)
	}
	f.proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.relay(w, r, cutAfter)
	}))
	t.Cleanup(f.proxy.Close)
	return f.withReceiver(verifier)
}

// relay passes a request to the API; a listen stream is cut after
// cutAfter events that no earlier connection relayed, in the middle of the
// next one. (Events sent again after a reconnect do not count: a stream
// resumes a few seconds back, and counting them could starve it.)
func (f *serveFixture) relay(w http.ResponseWriter, r *http.Request, cutAfter int) {
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, f.api.URL+r.URL.RequestURI(), r.Body)
	req.Header = r.Header.Clone()
	resp, err := f.api.Client().Do(req)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	fresh, id := 0, ""
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			id = v
		}
		if line == "event: webhook\n" {
			f.mu.Lock()
			seen := f.relayed[id]
			cut := !seen && fresh >= cutAfter
			if !seen && !cut {
				f.relayed[id] = true
				fresh++
			}
			f.mu.Unlock()
			if cut {
				_, _ = io.WriteString(w, line) // the event's id and type, not its data
				_ = rc.Flush()
				f.cuts.Add(1)
				panic(http.ErrAbortHandler)
			}
		}
		_, _ = io.WriteString(w, line)
		_ = rc.Flush()
	}
}

// withReceiver starts the local receiver: it verifies every request and
// fails the first attempt of one event in 25.
func (f *serveFixture) withReceiver(v *webhook.Verifier) *serveFixture {
	f.local = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id := r.Header.Get(webhook.HeaderID)
		f.mu.Lock()
		defer f.mu.Unlock()
		if err := v.Verify(r.Header, body); err != nil {
			f.bad = append(f.bad, id+": "+err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		f.attempts[id]++
		if f.attempts[id] == 1 && len(f.attempts)%25 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		f.got[id]++
	}))
	f.t.Cleanup(f.local.Close)
	return f
}

// call sends an API request with the project's key and decodes a 200.
func (f *serveFixture) call(method, path string, body, out any) {
	f.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, f.api.URL+path, bytes.NewReader(b))
	req.Header.Set("x-goog-api-key", f.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.api.Client().Do(req)
	if err != nil {
		f.t.Error(err)
		return
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		f.t.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		return
	}
	if out != nil {
		_ = json.Unmarshal(raw, out)
	}
}

func (f *serveFixture) publish(n int, tag string) {
	for i := range n {
		f.call("POST", "/v1beta/events", map[string]any{
			"type": "batch.succeeded", "data": map[string]any{"id": fmt.Sprintf("batches/%s-%d", tag, i)},
		}, nil)
	}
}

// deliveryIDs lists every delivery id of the webhook from the store.
func (f *serveFixture) deliveryIDs() []string {
	f.t.Helper()
	var ids []string
	p := core.ListDeliveriesParams{ProjectID: f.project, WebhookID: f.hook, Limit: 1000}
	for {
		ds, err := f.store.ListDeliveries(context.Background(), p)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, d := range ds {
			ids = append(ids, d.ID)
		}
		if len(ds) < p.Limit {
			return ids
		}
		p.BeforeID = ds[len(ds)-1].ID
	}
}

// missing returns the webhook's deliveries the receiver has not accepted.
func (f *serveFixture) missing() []string {
	ids := f.deliveryIDs()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, id := range ids {
		if f.got[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

func (f *serveFixture) startListen(state string, extra ...string) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	args := append([]string{"--from", f.proxy.URL + "/v1beta/webhooks/" + f.hook, "--forward-to", f.local.URL,
		"--api-key", f.key, "--state", state, "--log-level", "error"}, extra...)
	go func() { done <- RunListen(ctx, args, func(string) string { return "" }, io.Discard, io.Discard) }()
	return func() error {
		cancel()
		return <-done
	}
}

// Listening to a serve webhook through a connection cut every few events
// (mid-event), with a receiver that sometimes fails: every delivery
// reaches the receiver, verified, including those published while listen
// was stopped.
func TestListenServeResumesAfterCuts(t *testing.T) {
	t.Parallel()
	f := setupServe(t, 17)
	state := filepath.Join(t.TempDir(), "state.json")
	f.publish(40, "before") // replayed: --after 0
	stop := f.startListen(state, "--after", "0")

	published := make(chan struct{})
	go func() {
		defer close(published)
		f.publish(120, "during")
	}()
	<-published
	waitFor(t, 60*time.Second, "every delivery at the receiver", func() bool { return len(f.missing()) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := f.cuts.Load(); n < 5 {
		t.Errorf("only %d cuts", n)
	}

	f.publish(15, "stopped")
	stop = f.startListen(state)
	waitFor(t, 30*time.Second, "deliveries published while listen was stopped", func() bool { return len(f.missing()) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bad) > 0 {
		t.Errorf("%d requests failed verification, e.g. %s", len(f.bad), f.bad[0])
	}
	dups := 0
	for _, n := range f.got {
		dups += n - 1
	}
	if want := 175; len(f.got) != want {
		t.Errorf("receiver accepted %d distinct deliveries, want %d", len(f.got), want)
	}
	t.Logf("%d deliveries, %d cuts, %d forwarded twice or more", len(f.got), f.cuts.Load(), dups)
}

func TestListenServeRefusals(t *testing.T) {
	t.Parallel()
	f := setupServe(t, 1000)
	run := func(args ...string) error {
		args = append(args, "--forward-to", f.local.URL, "--state", filepath.Join(t.TempDir(), "s.json"))
		return RunListen(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard)
	}
	from := f.api.URL + "/v1beta/webhooks/" + f.hook
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", from, "--api-key", "wrong"}, "401"},
		{[]string{"--from", f.api.URL + "/v1/webhooks/nope", "--api-key", f.key}, "404"},
		{[]string{"--from", from}, "--api-key is required"},
		{[]string{"--from", from, "--api-key", f.key, "--after", "12"}, "delivery id"},
	} {
		if err := run(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error with %q", c.args, err, c.want)
		}
	}
}

func TestServeStreamURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://h:8080/v1beta/webhooks/abc":         "http://h:8080/v1beta/webhooks/abc:listen",
		"http://h:8080/v1/webhooks/abc:listen":      "http://h:8080/v1/webhooks/abc:listen",
		"https://h/prefix/v1alpha/webhooks/abc/":    "https://h/prefix/v1alpha/webhooks/abc:listen",
		"http://h/v1beta/webhooks/abc?x=1":          "http://h/v1beta/webhooks/abc:listen?x=1",
		"http://h/_longhook/listen/gemini":          "",
		"http://h/v1beta/webhooks/abc:ping":         "",
		"http://h/v2/webhooks/abc":                  "",
		"http://h/v1beta/webhooks/abc/deliveries":   "",
		"http://h/v1beta/webhooks/":                 "",
		"http://h/v1beta/projects/abc":              "",
		"http://h:8080/v1beta/webhooks/abc:listen/": "http://h:8080/v1beta/webhooks/abc:listen",
	} {
		got, ok := serveStreamURL(in)
		if got != want || ok != (want != "") {
			t.Errorf("%s: %q %v, want %q", in, got, ok, want)
		}
	}
}
