package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/engine"
	"github.com/longhook/longhook/internal/jobs"
	"github.com/longhook/longhook/internal/jwks"
	"github.com/longhook/longhook/internal/publish"
	"github.com/longhook/longhook/internal/secretbox"
	"github.com/longhook/longhook/internal/store/sqlite"
	"github.com/longhook/longhook/webhook"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The only exceptions: goroutines the test cannot end. OpenCensus
		// (linked by the Go SDK's dependencies) starts its view worker in
		// an init function and never stops it.
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		// The delivery sender's HTTP client (fasthttp) retires its
		// connection pools from background loops that end on their own
		// once the pools are empty (within 10 s).
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*Client).mCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
	)
}

// fixture is a whole sender: a real SQLite store, the API server with the
// jobs routes, the publisher, the delivery engine signing dynamic webhooks
// with a JWKS manager, and the jobs runner.
type fixture struct {
	t       *testing.T
	dir     string
	store   *sqlite.Store
	svc     *jobs.Service
	srv     *httptest.Server
	keys    *jwks.Manager
	sender  *engine.Sender
	project string
	key     string
	stops   []func()
}

// options adjust a fixture.
type options struct {
	cfg      func(*jobs.Config) // adjusts the jobs config
	noRunner bool               // do not start jobs.Service.Run
	dir      string             // reuse a data directory (restart tests)
}

func setup(t *testing.T, o options) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t, dir: o.dir}
	if f.dir == "" {
		f.dir = t.TempDir()
	}
	st, err := sqlite.Open(ctx, filepath.Join(f.dir, "longhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	f.store = st
	box, err := secretbox.New(bytes.Repeat([]byte{7}, secretbox.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	projects, _ := st.ListProjects(ctx)
	if len(projects) == 0 {
		f.project = core.NewID()
		if err := st.CreateProject(ctx, core.Project{ID: f.project, Name: "p", CreateTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
	} else {
		f.project = projects[0].ID
	}
	plain, digest, hint := api.NewAPIKey()
	if err := st.CreateAPIKey(ctx, core.APIKey{ID: core.NewID(), ProjectID: f.project, Name: "k", Digest: digest, Hint: hint, CreateTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	f.key = plain

	// The server's URL is the JWT issuer, so start it before building the
	// handler.
	var handler atomic.Pointer[http.Handler]
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*handler.Load()).ServeHTTP(w, r)
	}))
	f.keys, err = jwks.New(ctx, jwks.Config{Store: st, Cipher: box, Issuer: f.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	policy := core.AddressPolicy{Dev: true}
	cat, _ := core.NewCatalog()
	pub := publish.New(publish.Config{Store: st, Catalog: cat, Policy: policy})
	f.sender = engine.NewSender(engine.SenderConfig{Policy: policy, AttemptTimeout: 5 * time.Second})
	eng := engine.New(engine.Config{Store: st, Cipher: box, Dynamic: f.keys, Sender: f.sender, Logger: testLogger()})
	cfg := jobs.Config{Store: st, Publisher: pub, Dir: filepath.Join(f.dir, "jobs"), Policy: policy, Logger: testLogger()}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	f.svc, err = jobs.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := api.NewServer(api.Deps{Store: st, Cipher: box, Publisher: pub, Catalog: cat, Policy: policy,
		JWKS: f.keys, Jobs: f.svc, Logger: testLogger(), KeyCacheTTL: -1})
	handler.Store(&h)

	f.run("engine", eng.Run)
	if !o.noRunner {
		f.run("runner", f.svc.Run)
	}
	t.Cleanup(f.close)
	return f
}

// run starts a component until the fixture closes.
func (f *fixture) run(name string, fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fn(ctx); err != nil {
			f.t.Errorf("%s: %v", name, err)
		}
	}()
	f.stops = append(f.stops, func() { cancel(); <-done })
}

// close stops everything (runner before engine) and closes the store.
// Safe to call twice.
func (f *fixture) close() {
	for i := len(f.stops) - 1; i >= 0; i-- {
		f.stops[i]()
	}
	f.stops = nil
	if f.srv != nil {
		f.srv.Close()
		f.srv = nil
	}
	f.sender.CloseIdle()
	_ = f.store.Close()
}

func testLogger() *slog.Logger {
	if os.Getenv("LONGHOOK_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// reply is a decoded API answer.
type reply struct {
	status int
	raw    []byte
	body   map[string]any
}

// call sends an authenticated request; body may be nil, a string or a
// value to marshal.
func (f *fixture) call(method, path string, body any) *reply {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("x-goog-api-key", f.key)
	req.Header.Set("Content-Type", "application/json")
	res, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := &reply{status: res.StatusCode, raw: raw}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

// must asserts the status.
func (r *reply) must(t *testing.T, status int) *reply {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

// path returns a nested value ("metadata.state").
func (r *reply) path(p string) any {
	var v any = r.body
	for _, k := range strings.Split(p, ".") {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

func (r *reply) str(p string) string {
	s, _ := r.path(p).(string)
	return s
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// settled polls a job until it is settled with its event published, and
// returns it.
func (f *fixture) settled(id string) *core.Job {
	f.t.Helper()
	var j *core.Job
	defer func() {
		if f.t.Failed() && j != nil {
			f.t.Logf("last seen: %+v", *j)
		}
	}()
	waitFor(f.t, "job "+id+" to settle", func() bool {
		var err error
		j, err = f.store.GetJob(context.Background(), f.project, id)
		if err != nil {
			f.t.Fatal(err)
		}
		return j.State.Settled() && j.Outbox == nil
	})
	return j
}

// delivery is one webhook request a receiver got.
type delivery struct {
	header http.Header
	body   []byte
	event  map[string]any
}

func (d delivery) data() map[string]any {
	m, _ := d.event["data"].(map[string]any)
	return m
}

// receiver records deliveries and answers 204.
type receiver struct {
	srv *httptest.Server
	got chan delivery
	mu  sync.Mutex
	all []delivery
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: make(chan delivery, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		d := delivery{header: req.Header.Clone(), body: body}
		_ = json.Unmarshal(body, &d.event)
		r.mu.Lock()
		r.all = append(r.all, d)
		r.mu.Unlock()
		r.got <- d
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// next waits for the next delivery.
func (r *receiver) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-r.got:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a webhook delivery")
		return delivery{}
	}
}

// collect waits for n deliveries and returns them in arrival order.
func (r *receiver) collect(t *testing.T, n int) []delivery {
	t.Helper()
	out := make([]delivery, 0, n)
	for len(out) < n {
		out = append(out, r.next(t))
	}
	return out
}

// verifier checks dynamic deliveries' JWTs against the server's JWKS.
func (f *fixture) verifier(t *testing.T, audience string) *webhook.JWKSVerifier {
	t.Helper()
	v, err := webhook.NewJWKSVerifier(f.srv.URL+"/.well-known/jwks.json", f.srv.URL, audience, webhook.WithHTTPClient(f.srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// createBatch posts an inline batch and returns its id (without batches/).
func (f *fixture) createBatch(texts []string, wc map[string]any) string {
	f.t.Helper()
	var reqs []any
	for i, s := range texts {
		reqs = append(reqs, map[string]any{
			"request":  map[string]any{"contents": []any{map[string]any{"role": "user", "parts": []any{map[string]any{"text": s}}}}},
			"metadata": map[string]any{"key": "k" + string(rune('0'+i))},
		})
	}
	batch := map[string]any{"displayName": "b", "inputConfig": map[string]any{"requests": map[string]any{"requests": reqs}}}
	if wc != nil {
		batch["webhookConfig"] = wc
	}
	r := f.call("POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", map[string]any{"batch": batch}).must(f.t, 200)
	return strings.TrimPrefix(r.str("name"), "batches/")
}
