package console_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/clocktest"
	"github.com/longhook/longhook/internal/console"
)

// A form another site posts comes without the session cookie (it is
// SameSite=Strict): the console refuses it and leaves the cookie alone,
// or any page could sign the operator out. A cookie that names no live
// session is cleared.
func TestCrossSiteFormKeepsTheSession(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	ck := f.signIn()
	post := func(with *http.Cookie) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", f.srv.URL+"/console/webhooks/"+f.hook.ID+"/disable",
			strings.NewReader(url.Values{"csrf": {"forged"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		if with != nil {
			req.AddCookie(with)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	clears := func(resp *http.Response) bool {
		for _, c := range resp.Cookies() {
			if c.Name == "longhook_console" && c.MaxAge < 0 {
				return true
			}
		}
		return false
	}
	if resp := post(nil); resp.StatusCode/100 != 4 || clears(resp) {
		t.Fatalf("a cross-site form without the cookie: status %d, clears the session cookie %v; want a 4xx that leaves it", resp.StatusCode, clears(resp))
	}
	resp := f.get(t.Context(), "/console/webhooks", ck)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the session after a cross-site form: status %d, want 200", resp.StatusCode)
	}
	if resp := post(&http.Cookie{Name: "longhook_console", Value: "no-such-session"}); !clears(resp) {
		t.Fatalf("a cookie of no session is not cleared (status %d)", resp.StatusCode)
	}
}

// Behind a reverse proxy that rewrites Host (nginx's default proxy_pass
// sends the upstream's, 127.0.0.1:8080), the browser's Origin is the
// public site: sign-in and every form must still count as same-site when
// the Origin is --public-url's or the host the proxy says it forwarded,
// and nothing else. The cookie is Secure: --public-url is https, so the
// browser reaches the console over HTTPS even when the proxy sends no
// X-Forwarded-Proto (TestSessionCookieSecure has the http cases).
func TestFormsBehindAReverseProxy(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, func(d *console.Deps) { d.PublicURL = "https://hooks.example.com" })
	signIn := func(header map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", f.srv.URL+"/console/signin", strings.NewReader(url.Values{"key": {f.key}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	cookie := func(resp *http.Response) *http.Cookie {
		for _, c := range resp.Cookies() {
			if c.Name == "longhook_console" && c.MaxAge >= 0 {
				return c
			}
		}
		return nil
	}
	for _, tc := range []struct {
		name   string
		header map[string]string
		ok     bool
		secure bool
	}{
		{"the public URL's origin", map[string]string{"Origin": "https://hooks.example.com"}, true, true},
		{"TLS ended at the proxy", map[string]string{"Origin": "https://hooks.example.com", "X-Forwarded-Proto": "https"}, true, true},
		{"the forwarded host", map[string]string{"Origin": "https://console.example.org", "X-Forwarded-Host": "console.example.org"}, true, true},
		{"the public host over http", map[string]string{"Origin": "http://hooks.example.com"}, false, false},
		{"another site", map[string]string{"Origin": "https://evil.example", "X-Forwarded-Proto": "https"}, false, false},
		{"another site with a forwarded host", map[string]string{"Origin": "https://evil.example", "X-Forwarded-Host": "hooks.example.com"}, false, false},
	} {
		resp := signIn(tc.header)
		c := cookie(resp)
		if tc.ok != (resp.StatusCode == http.StatusSeeOther && c != nil) {
			t.Errorf("%s: sign-in answered %d (cookie %v), want signed in: %v", tc.name, resp.StatusCode, c != nil, tc.ok)
			continue
		}
		if c != nil && c.Secure != tc.secure {
			t.Errorf("%s: cookie Secure %v, want %v", tc.name, c.Secure, tc.secure)
		}
	}
	// A form of a signed-in session, through the proxy.
	ck := f.signIn()
	page := f.get(t.Context(), "/console/webhooks/"+f.hook.ID, ck)
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the webhook page")
	}
	req, _ := http.NewRequest("POST", f.srv.URL+"/console/webhooks/"+f.hook.ID+"/disable", strings.NewReader(url.Values{"csrf": {string(m[1])}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://hooks.example.com")
	req.AddCookie(ck)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disable through the proxy: status %d, want 303", resp.StatusCode)
	}
}

// Sessions live in memory, so one API key holds at most MaxSessionsPerKey
// of them: signing in once more ends the key's least recently used
// session. Without the cap any key holder could sign in without end,
// growing the table (and every sign-in's sweep of it) and opening
// MaxStreamsPerSession live streams in each new session.
func TestSessionsPerKeyAreCapped(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, func(d *console.Deps) { d.MaxSessionsPerKey = 2 })
	status := func(ck *http.Cookie) int {
		t.Helper()
		resp := f.get(t.Context(), "/console/webhooks", ck)
		resp.Body.Close()
		return resp.StatusCode
	}
	first, second := f.signIn(), f.signIn()
	if got := status(first); got != http.StatusOK { // first is now the most recently used
		t.Fatalf("the first session: status %d, want 200", got)
	}
	third := f.signIn() // ends second, the least recently used
	for _, tc := range []struct {
		name string
		ck   *http.Cookie
		want int
	}{
		{"first", first, http.StatusOK},
		{"second", second, http.StatusSeeOther},
		{"third", third, http.StatusOK},
	} {
		if got := status(tc.ck); got != tc.want {
			t.Errorf("the %s session after a third sign-in: status %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestSessionsEndAtTheirMaxAge: a session in steady use ends
// SessionMaxAge after its sign-in; each use extended it by SessionTTL for
// ever before. A session left unused still ends after SessionTTL.
func TestSessionsEndAtTheirMaxAge(t *testing.T) {
	t.Parallel()
	clock := clocktest.New(time.Now())
	f := newStreamFixture(t, func(d *console.Deps) {
		d.Clock, d.SessionTTL, d.SessionMaxAge = clock, time.Hour, 3*time.Hour
	})
	status := func(ck *http.Cookie) int {
		t.Helper()
		resp := f.get(t.Context(), "/console/webhooks", ck)
		resp.Body.Close()
		return resp.StatusCode
	}
	used := f.signIn()
	for i, want := range []int{http.StatusOK, http.StatusOK, http.StatusOK, http.StatusSeeOther} {
		clock.Advance(50 * time.Minute) // used every 50 minutes: within the TTL each time
		if got := status(used); got != want {
			t.Fatalf("%d minutes after sign-in: status %d, want %d", 50*(i+1), got, want)
		}
	}
	idle := f.signIn()
	clock.Advance(61 * time.Minute)
	if got := status(idle); got != http.StatusSeeOther {
		t.Errorf("61 minutes unused: status %d, want %d", got, http.StatusSeeOther)
	}
}

// TestSessionCookieSecure: the session cookie (and the cookie that signs
// out) is Secure when the browser reached the console over TLS — a proxy
// that says so with X-Forwarded-Proto — or when serve's --public-url is
// https, whatever the proxy sends; without either it is not (plain
// http://127.0.0.1 in development must keep working). It followed TLS
// and X-Forwarded-Proto only: behind a proxy that ends TLS and sends no
// X-Forwarded-Proto, the cookie of an https:// console was not Secure.
func TestSessionCookieSecure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		publicURL string
		proto     string // X-Forwarded-Proto
		secure    bool
	}{
		{"", "", false},
		{"http://127.0.0.1:8080", "", false},
		{"http://127.0.0.1:8080", "https", true},
		{"https://hooks.example.com", "", true},
		{"HTTPS://hooks.example.com/", "http", true},
	} {
		f := newStreamFixture(t, func(d *console.Deps) { d.PublicURL = tc.publicURL })
		send := func(method, path string, form url.Values, ck *http.Cookie) *http.Cookie {
			t.Helper()
			req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", f.srv.URL)
			if tc.proto != "" {
				req.Header.Set("X-Forwarded-Proto", tc.proto)
			}
			if ck != nil {
				req.AddCookie(ck)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			for _, c := range resp.Cookies() {
				if c.Name == "longhook_console" {
					return c
				}
			}
			t.Fatalf("public URL %q, %s %s: no session cookie (status %d)", tc.publicURL, method, path, resp.StatusCode)
			return nil
		}
		ck := send("POST", "/console/signin", url.Values{"key": {f.key}}, nil)
		if ck.Secure != tc.secure {
			t.Errorf("public URL %q, X-Forwarded-Proto %q: sign-in cookie Secure %v, want %v", tc.publicURL, tc.proto, ck.Secure, tc.secure)
		}
		page := f.get(t.Context(), "/console/webhooks", ck)
		body, _ := io.ReadAll(page.Body)
		page.Body.Close()
		m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("public URL %q: no CSRF token on the webhooks page", tc.publicURL)
		}
		if out := send("POST", "/console/signout", url.Values{"csrf": {string(m[1])}}, ck); out.MaxAge >= 0 || out.Secure != tc.secure {
			t.Errorf("public URL %q, X-Forwarded-Proto %q: sign-out cookie MaxAge %d Secure %v, want a clearing cookie with Secure %v",
				tc.publicURL, tc.proto, out.MaxAge, out.Secure, tc.secure)
		}
	}
}
