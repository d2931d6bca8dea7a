package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// handlerFixture serves a Receiver's Handler on a real HTTP server and
// records what fn and OnError saw.
type handlerFixture struct {
	jwt  *jwtFixture
	sec  Secret
	srv  *httptest.Server
	fail error // what fn returns

	mu       sync.Mutex
	done     []string // res.ID of every fn call
	bodies   []string
	statuses []int // OnError's status of every refusal
}

func setupHandler(t *testing.T) *handlerFixture {
	t.Helper()
	f := &handlerFixture{jwt: setupJWT(t)}
	raw := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	hv, err := NewVerifier([]string{raw}, WithClock(f.jwt.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	f.sec, _ = ParseSecret(raw)
	r := &Receiver{HMAC: hv, JWKS: f.jwt.v, MaxBodySize: 1000,
		OnError: func(_ *http.Request, status int, _ error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.statuses = append(f.statuses, status)
		}}
	f.srv = httptest.NewServer(r.Handler(func(_ context.Context, res *Result, body []byte) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.fail != nil {
			return f.fail
		}
		f.done = append(f.done, res.ID+"/"+string(res.Scheme))
		f.bodies = append(f.bodies, string(body))
		return nil
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// post sends body with h and returns the status and the answer's text.
func (f *handlerFixture) post(t *testing.T, method string, h http.Header, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(text)
}

// TestReceiverHandler: the Handler answers 2xx only after fn returned nil,
// 500 (so the sender retries) when fn failed, and a refusal with a status
// and a reason for each kind of bad request, without calling fn.
func TestReceiverHandler(t *testing.T) {
	t.Parallel()
	f := setupHandler(t)
	now := f.jwt.clock.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	body := string(f.jwt.body)
	hmacH := hdr("msg_1", ts, Sign(f.sec, "msg_1", now, f.jwt.body))

	if code, _ := f.post(t, http.MethodPost, hmacH, body); code != http.StatusNoContent {
		t.Fatalf("HMAC: status %d, want 204", code)
	}
	jwtH := hdr("msg_2", ts, f.jwt.sign(t, f.jwt.claims("msg_2")))
	if code, _ := f.post(t, http.MethodPost, jwtH, body); code != http.StatusNoContent {
		t.Fatalf("JWT: status %d, want 204", code)
	}

	f.mu.Lock()
	f.fail = errors.New("database is down")
	f.mu.Unlock()
	if code, text := f.post(t, http.MethodPost, hmacH, body); code != http.StatusInternalServerError || strings.Contains(text, "database") {
		t.Fatalf("fn failed: status %d %q, want 500 without fn's error", code, text)
	}

	stale := now.Add(-10 * time.Minute)
	big := strings.Repeat("x", 1001)
	for _, tc := range []struct {
		name, method, body string
		h                  http.Header
		status             int
		reason             string
	}{
		{"forged", http.MethodPost, body, hdr("msg_1", ts, Sign(f.sec, "msg_1", now, []byte("{}"))), 401, "no matching signature"},
		{"stale", http.MethodPost, body, hdr("msg_1", strconv.FormatInt(stale.Unix(), 10), Sign(f.sec, "msg_1", stale, f.jwt.body)), 401, "timestamp too old"},
		{"no signature", http.MethodPost, body, hdr("msg_1", ts, ""), 400, "missing header"},
		{"too big", http.MethodPost, big, hdr("msg_1", ts, Sign(f.sec, "msg_1", now, []byte(big))), 413, "too large"},
		{"GET", http.MethodGet, "", hmacH, 405, "want POST"},
	} {
		code, text := f.post(t, tc.method, tc.h, tc.body)
		if code != tc.status || !strings.Contains(text, tc.reason) {
			t.Errorf("%s: %d %q, want %d with %q", tc.name, code, text, tc.status, tc.reason)
		}
	}

	// A JWKS endpoint that is down: the token may be genuine, so 503.
	f.jwt.srv.Close()
	f.jwt.clock.Advance(MaxJWKSCacheTTL + MaxJWKSStale + time.Hour)
	now = f.jwt.clock.Now()
	jwtH = hdr("msg_3", strconv.FormatInt(now.Unix(), 10), f.jwt.sign(t, f.jwt.claims("msg_3")))
	if code, text := f.post(t, http.MethodPost, jwtH, body); code != http.StatusServiceUnavailable || !strings.Contains(text, "jwks") {
		t.Errorf("JWKS down: %d %q, want 503", code, text)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if want := []string{"msg_1/hmac-v1", "msg_2/jwt"}; strings.Join(f.done, " ") != strings.Join(want, " ") || f.bodies[0] != body {
		t.Errorf("fn saw %v %q, want %v with the raw body", f.done, f.bodies, want)
	}
	if want := []int{500, 401, 401, 400, 413, 405, 503}; !slices.Equal(f.statuses, want) {
		t.Errorf("OnError saw %v, want %v", f.statuses, want)
	}
}

// TestReceiverHandlerOtherProject: a genuine token of another project of
// the same sender is refused 401 without telling the sender which project
// the receiver is pinned to (a verification error's text names it); OnError
// still gets the whole error.
func TestReceiverHandlerOtherProject(t *testing.T) {
	t.Parallel()
	f := setupJWT(t, WithProject("proj-pinned"))
	var logged error
	r := &Receiver{JWKS: f.v, OnError: func(_ *http.Request, _ int, err error) { logged = err }}
	h := r.Handler(func(context.Context, *Result, []byte) error { return nil })
	c := f.claims("msg_1")
	c.Project = "proj-other"
	req := httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(string(f.body)))
	req.Header = hdr("msg_1", strconv.FormatInt(f.clock.Now().Unix(), 10), f.sign(t, c))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized || strings.Contains(w.Body.String(), "proj-pinned") || !strings.Contains(w.Body.String(), "unexpected project") {
		t.Errorf("answer %d %q, want 401 without the pinned project", w.Code, w.Body.String())
	}
	if !errors.Is(logged, ErrProject) || !strings.Contains(logged.Error(), "proj-pinned") {
		t.Errorf("OnError got %v, want the whole ErrProject", logged)
	}
}
