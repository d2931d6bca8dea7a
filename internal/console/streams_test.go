package console_test

import (
	"bufio"
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/console"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/secretbox"
	"github.com/longhook/longhook/internal/store/sqlite"
	"github.com/longhook/longhook/internal/store/storetest"
)

// streamFixture is serve's HTTP handler (the API with the console mounted)
// over a real SQLite store, one project with a key and a webhook.
type streamFixture struct {
	t     *testing.T
	st    *sqlite.Store
	srv   *httptest.Server
	key   string // plaintext API key
	keyID string
	hook  *core.Webhook
}

func newStreamFixture(t *testing.T, edit func(*console.Deps)) *streamFixture {
	t.Helper()
	return newServeFixture(t, nil, edit)
}

// newServeFixture is newStreamFixture with the API's dependencies edited
// too (editAPI may be nil).
func newServeFixture(t *testing.T, editAPI func(*api.Deps), edit func(*console.Deps)) *streamFixture {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "longhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, err := secretbox.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	p := storetest.NewProject()
	if err := st.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	k, raw := storetest.NewAPIKey(p.ID)
	if err := st.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	hook := storetest.NewWebhook(p.ID)
	if err := st.CreateWebhook(ctx, hook); err != nil {
		t.Fatal(err)
	}
	var con *console.Console
	ad := api.Deps{Store: st, Cipher: box, Console: func(a http.Handler) http.Handler {
		d := console.Deps{API: a, Store: st, Publisher: nopPublisher{}, Catalog: mustCatalog(t), Jobs: st}
		if edit != nil {
			edit(&d)
		}
		con = console.New(d)
		return con
	}}
	if editAPI != nil {
		editAPI(&ad)
	}
	h := api.NewServer(ad)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(con.Close) // before srv.Close: open streams end
	return &streamFixture{t: t, st: st, srv: srv, key: raw, keyID: k.ID, hook: hook}
}

// client does not follow redirects, so a redirect to sign-in is seen.
var client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// signIn starts a console session and returns its cookie.
func (f *streamFixture) signIn() *http.Cookie {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+"/console/signin", strings.NewReader(url.Values{"key": {f.key}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.srv.URL)
	resp, err := client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "longhook_console" {
			return ck
		}
	}
	f.t.Fatalf("sign-in set no session cookie (status %d)", resp.StatusCode)
	return nil
}

// publish stores one event with a delivery to the fixture's webhook.
func (f *streamFixture) publish() {
	f.t.Helper()
	ev := storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, time.Now().UTC(), f.hook)
	if _, err := f.st.PublishEvents(f.t.Context(), []core.NewEvent{ev}); err != nil {
		f.t.Fatal(err)
	}
}

// get requests path with the session cookie.
func (f *streamFixture) get(ctx context.Context, path string, ck *http.Cookie) *http.Response {
	f.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+path, nil)
	req.AddCookie(ck)
	resp, err := client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

type sseFrame struct{ event, data string }

// liveStream is an open console stream; frames is closed when it ends.
type liveStream struct {
	frames chan sseFrame
	cancel func()
}

// open opens the webhook's live stream and waits for its first delivery
// row (the fixture publishes one before).
func (f *streamFixture) open(ck *http.Cookie) *liveStream {
	f.t.Helper()
	ctx, cancel := context.WithCancel(f.t.Context())
	f.t.Cleanup(cancel)
	resp := f.get(ctx, "/console/webhooks/"+f.hook.ID+"/stream", ck)
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		f.t.Fatalf("stream: %d, want 200", resp.StatusCode)
	}
	ls := &liveStream{frames: make(chan sseFrame, 64), cancel: cancel}
	go func() {
		defer close(ls.frames)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var fr sseFrame
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if fr.event != "" {
					ls.frames <- fr
				}
				fr = sseFrame{}
			case strings.HasPrefix(line, "event: "):
				fr.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				fr.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	select {
	case fr, ok := <-ls.frames:
		if !ok || fr.event != "delivery" {
			f.t.Fatalf("stream: first frame %+v (open %v), want a delivery", fr, ok)
		}
	case <-time.After(60 * time.Second):
		f.t.Fatal("stream: no first delivery row within 60 s")
	}
	return ls
}

// ended waits for the stream to end, failing on any delivery row before
// that, and returns the reason of its "end" event.
func (ls *liveStream) ended(t *testing.T) string {
	t.Helper()
	deadline := time.After(60 * time.Second)
	reason := ""
	for {
		select {
		case fr, ok := <-ls.frames:
			if !ok {
				return reason
			}
			switch fr.event {
			case "delivery":
				t.Fatalf("a delivery row arrived on a stream that should have ended: %s", fr.data)
			case "end":
				reason = fr.data
			}
		case <-deadline:
			t.Fatal("the stream is still open after 60 s")
		}
	}
}

// TestConsoleStreamEndsWhenKeyRevoked (issues 16 and 13, defect 2):
// revoking the session's API key — in the store, as another process
// would — ends the console's live stream: at the next recheck while
// nothing happens, and before any row is sent otherwise (with a recheck
// period longer than the test, a delivery made after the revocation
// never reaches the stream). The session is over, so pages then redirect
// to sign-in.
func TestConsoleStreamEndsWhenKeyRevoked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		recheck time.Duration
		publish bool
	}{{"recheck", 20 * time.Millisecond, false}, {"before sending", time.Hour, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newStreamFixture(t, func(d *console.Deps) { d.StreamRecheck = tc.recheck })
			f.publish()
			ck := f.signIn()
			ls := f.open(ck)
			if err := f.st.RevokeAPIKey(t.Context(), f.keyID, time.Now()); err != nil {
				t.Fatal(err)
			}
			if tc.publish {
				f.publish()
			}
			if reason := ls.ended(t); reason != "session ended" {
				t.Errorf("end reason %q, want \"session ended\"", reason)
			}
			resp := f.get(t.Context(), "/console/webhooks/"+f.hook.ID, ck)
			resp.Body.Close()
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/signin") {
				t.Errorf("a page after revocation: %d to %q, want 303 to sign-in", resp.StatusCode, loc)
			}
		})
	}
}

// TestConsoleStreamEndsOnSignOut: signing out ends the session's open
// streams too.
func TestConsoleStreamEndsOnSignOut(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, func(d *console.Deps) { d.StreamRecheck = 20 * time.Millisecond })
	f.publish()
	ck := f.signIn()
	ls := f.open(ck)
	resp := f.get(t.Context(), "/console/admin", ck)
	var page strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&page)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.String())
	if m == nil {
		t.Fatalf("no CSRF token on the admin page (status %d)", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", f.srv.URL+"/console/signout", strings.NewReader(url.Values{"csrf": {m[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.srv.URL)
	req.AddCookie(ck)
	out, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	if out.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", out.StatusCode)
	}
	f.publish()
	if reason := ls.ended(t); reason != "session ended" {
		t.Errorf("end reason %q, want \"session ended\"", reason)
	}
}

// TestConsolePagesRefusedAfterRevoke (issue 16): a session whose key was
// revoked is over for ordinary pages too: each redirects to sign-in, and
// a POST is 401; a new sign-in with the key is refused.
func TestConsolePagesRefusedAfterRevoke(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	ck := f.signIn()
	resp := f.get(t.Context(), "/console/webhooks", ck)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhooks page before revocation: %d", resp.StatusCode)
	}
	if err := f.st.RevokeAPIKey(t.Context(), f.keyID, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/console/", "/console/webhooks", "/console/webhooks/" + f.hook.ID, "/console/admin"} {
		resp := f.get(t.Context(), path, ck)
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/signin") {
			t.Errorf("GET %s after revocation: %d to %q, want 303 to sign-in", path, resp.StatusCode, loc)
		}
	}
	req, _ := http.NewRequest("POST", f.srv.URL+"/console/webhooks/"+f.hook.ID+"/disable", strings.NewReader("csrf=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.srv.URL)
	req.AddCookie(ck)
	out, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	if out.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST after revocation: %d, want 401", out.StatusCode)
	}
	in, _ := http.NewRequest("POST", f.srv.URL+"/console/signin", strings.NewReader(url.Values{"key": {f.key}}.Encode()))
	in.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	in.Header.Set("Origin", f.srv.URL)
	if out, err = client.Do(in); err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	if out.StatusCode != http.StatusUnauthorized {
		t.Errorf("sign-in with the revoked key: %d, want 401", out.StatusCode)
	}
}

// TestConsoleStreamEndsWhenWebhookDeleted (issue 13, defect 2): deleting
// the webhook ends its live stream within the recheck period.
func TestConsoleStreamEndsWhenWebhookDeleted(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, func(d *console.Deps) { d.StreamRecheck = 20 * time.Millisecond })
	f.publish()
	ls := f.open(f.signIn())
	if err := f.st.DeleteWebhook(t.Context(), f.hook.ProjectID, f.hook.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if reason := ls.ended(t); reason != "webhook deleted" {
		t.Errorf("end reason %q, want \"webhook deleted\"", reason)
	}
}

// TestConsoleStreamsPerSessionCapped (issue 13, defect 2): a session holds
// at most MaxStreamsPerSession live streams; one more is 429; another
// session is not affected, and a closed stream frees its place.
func TestConsoleStreamsPerSessionCapped(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, func(d *console.Deps) { d.MaxStreamsPerSession = 2 })
	f.publish()
	ck := f.signIn()
	first := f.open(ck)
	f.open(ck)
	status := func(ck *http.Cookie) int {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		resp := f.get(ctx, "/console/webhooks/"+f.hook.ID+"/stream", ck)
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := status(ck); st != http.StatusTooManyRequests {
		t.Fatalf("a third stream of the session: %d, want 429", st)
	}
	f.open(f.signIn()) // another session of the same key

	first.cancel()
	deadline := time.Now().Add(60 * time.Second)
	for status(ck) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("a closed stream did not free its place")
		}
		time.Sleep(20 * time.Millisecond) // poll until the closed stream's handler returned
	}
}

// TestConsoleFiltersRefuseUnknownValues (newcomer): a type or status filter
// that names nothing — a typo in a hand-edited URL — is a 400 page saying
// what is valid, as in the API, not an empty list; valid filters list.
func TestConsoleFiltersRefuseUnknownValues(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	ck := f.signIn()
	hook := "/console/webhooks/" + f.hook.ID
	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/console/events?type=batch.succeded", http.StatusBadRequest, "unknown event type"},
		{hook + "?type=batch.succeded", http.StatusBadRequest, "unknown event type"},
		{hook + "?status=bogus", http.StatusBadRequest, "status: unknown value"},
		{"/console/events?type=batch.succeeded", http.StatusOK, ""},
		{hook + "?type=webhook.ping&status=failed", http.StatusOK, ""},
		{"/console/jobs?kind=batches", http.StatusBadRequest, "kind: unknown value"},
		{"/console/jobs?kind=interaction", http.StatusOK, ""},
	} {
		resp := f.get(t.Context(), c.path, ck)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != c.code || !strings.Contains(html.UnescapeString(string(body)), c.want) {
			t.Errorf("GET %s: %d, want %d and %q in the page", c.path, resp.StatusCode, c.code, c.want)
		}
	}
}
