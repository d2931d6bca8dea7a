package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/secretbox"
	"github.com/longhook/longhook/internal/store/sqlite"
	"github.com/longhook/longhook/internal/syncbuf"
)

func TestMain(m *testing.M) {
	// net/http ends a connection it closes after an answer by shutting its
	// write side and waiting 500 ms for the client to read (rstAvoidanceDelay)
	// before the goroutine exits: bounded, not a leak, but on a loaded
	// machine it outlasts goleak's retries after the last test.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

// fixture is the test bundle: a real SQLite store, one project with an API
// key, an admin key, and the API behind an httptest.Server.
type fixture struct {
	t       *testing.T
	store   *sqlite.Store
	srv     *httptest.Server
	fast    *api.FastListener // srv's listener
	project core.Project
	key     string // the project's API key
	admin   string // an admin key (of another project)
	logs    *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer = syncbuf.Buffer

// setup builds a fixture; opts adjust the Deps before NewServer.
func setup(t *testing.T, opts ...func(*api.Deps)) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "longhook.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })

	master := make([]byte, secretbox.KeySize)
	_, _ = rand.Read(master)
	box, err := secretbox.New(master)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, store: st, logs: &syncBuffer{}}
	f.project = f.newProject("test")
	f.key = f.newKey(f.project.ID, false)
	adminProject := f.newProject("admin")
	f.admin = f.newKey(adminProject.ID, true)

	d := api.Deps{
		Store:        st,
		Cipher:       box,
		Logger:       slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		PageTokenKey: []byte("test page token key"),
	}
	for _, o := range opts {
		o(&d)
	}
	// Served as longhook serve serves plain HTTP: publishes through the
	// fast path, everything else through net/http.
	f.srv = httptest.NewUnstartedServer(api.NewServer(d))
	f.fast = api.NewFastListener(f.srv.Listener, f.srv.Config)
	f.srv.Listener = f.fast
	f.srv.Start()
	t.Cleanup(func() {
		f.srv.Close()
		if err := f.fast.Wait(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return f
}

func (f *fixture) newProject(name string) core.Project {
	f.t.Helper()
	p := core.Project{ID: core.NewID(), Name: name, CreateTime: core.SystemClock{}.Now()}
	if err := f.store.CreateProject(context.Background(), p); err != nil {
		f.t.Fatalf("create project: %v", err)
	}
	return p
}

// newKey creates an API key for project directly in the store.
func (f *fixture) newKey(projectID string, admin bool) string {
	f.t.Helper()
	plain, digest, hint := api.NewAPIKey()
	k := core.APIKey{ID: core.NewID(), ProjectID: projectID, Name: "k", Digest: digest, Hint: hint,
		Admin: admin, CreateTime: core.SystemClock{}.Now()}
	if err := f.store.CreateAPIKey(context.Background(), k); err != nil {
		f.t.Fatalf("create key: %v", err)
	}
	return plain
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// str returns a top-level string field (or "").
func (r *response) str(name string) string {
	s, _ := r.body[name].(string)
	return s
}

// errMessage returns error.message of an error envelope.
func (r *response) errMessage() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

func (r *response) errStatus() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["status"].(string)
	return s
}

// call sends a request with the project's key. body may be nil, a string
// or []byte (sent verbatim), or a value to marshal.
func (f *fixture) call(method, path string, body any) *response {
	f.t.Helper()
	return f.callWith(f.key, nil, method, path, body)
}

// callWith sends a request with key (none when empty) and extra headers.
func (f *fixture) callWith(key string, header http.Header, method, path string, body any) *response {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
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
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("x-goog-api-key", key)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	out := &response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") && resp.StatusCode != http.StatusOK {
		f.t.Fatalf("%s %s: status %d with Content-Type %q, want JSON: %s", method, path, resp.StatusCode, ct, raw)
	}
	if len(raw) == 0 {
		f.t.Fatalf("%s %s: empty body (status %d)", method, path, resp.StatusCode)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			f.t.Fatalf("%s %s: body is not a JSON object: %v: %s", method, path, err, raw)
		}
	}
	return out
}

// must asserts a status and returns the response.
func (r *response) must(t *testing.T, status int) *response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

// mustError asserts a Google error envelope with status and a message
// containing every fragment.
func (r *response) mustError(t *testing.T, code int, status string, fragments ...string) {
	t.Helper()
	if r.status != code || r.errStatus() != status {
		t.Fatalf("got %d %s, want %d %s: %s", r.status, r.errStatus(), code, status, r.raw)
	}
	e, _ := r.body["error"].(map[string]any)
	if c, _ := e["code"].(float64); int(c) != code {
		t.Fatalf("error.code %v, want %d: %s", e["code"], code, r.raw)
	}
	for _, frag := range fragments {
		if !strings.Contains(r.errMessage(), frag) {
			t.Fatalf("error message %q does not contain %q", r.errMessage(), frag)
		}
	}
}

// createWebhook creates a webhook through the API and returns the response.
func (f *fixture) createWebhook(name string, events ...string) *response {
	f.t.Helper()
	if len(events) == 0 {
		events = []string{core.EventBatchSucceeded, core.EventBatchFailed}
	}
	return f.call("POST", "/v1beta/webhooks", map[string]any{
		"name": name, "uri": "https://example.com/hooks/" + name, "subscribed_events": events,
	}).must(f.t, http.StatusOK)
}
