package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestConsoleReplay: the console's replay of a source to one sink from a
// time counts first (sending nothing), then sends exactly the events
// received since that time to that sink again, and nothing to the others.
func TestConsoleReplay(t *testing.T) {
	t.Parallel()
	secretText, secret := mustSecret(t)
	a, b := newRecorder(t), newRecorder(t)
	var skew atomic.Int64 // the gateway's clock runs this far ahead of the real one
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	gw := startGateway(t, Config{ConsoleToken: "tok", Sources: []SourceConfig{{
		Name: "s", Verify: VerifyConfig{HMACSecrets: []string{secretText}},
		Sinks: []SinkConfig{{Name: "a", HTTP: &HTTPSinkConfig{URL: a.srv.URL}}, {Name: "b", HTTP: &HTTPSinkConfig{URL: b.srv.URL}}},
	}}}, WithClock(clock))
	send := func(from, to int) {
		for i := from; i < to; i++ {
			if s, body := post(t, gw.srv.Client(), gw.srv.URL+"/hooks/s", secret, fmt.Sprintf("msg_%d", i), time.Now(), testBody(i)); s != 200 {
				t.Fatalf("post %d: %d %s", i, s, body)
			}
		}
	}
	send(0, 10)
	skew.Store(int64(time.Minute)) // the next events are received a minute later
	send(10, 20)
	waitFor(t, 60*time.Second, "both sinks have every event", func() bool { return a.count() == 20 && b.count() == 20 })

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	console := gw.srv.URL + ConsolePath
	postForm := func(path string, form url.Values) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", console+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", gw.srv.URL)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	if st, page := postForm("signin", url.Values{"token": {"tok"}}); st != 200 || !strings.Contains(page, `id="replay"`) {
		t.Fatalf("sign-in: %d\n%s", st, page)
	}
	resp, err := hc.Get(console)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(string(raw))
	if m == nil {
		t.Fatalf("no CSRF token on the page:\n%s", raw)
	}
	since := time.Now().Add(30 * time.Second).UTC().Format(time.RFC3339) // between the two groups
	form := url.Values{"csrf": {m[1]}, "sink": {"s/a"}, "since": {since}}

	st, page := postForm("replay", form)
	if st != 200 || !strings.Contains(page, `<b id="replay-count">10</b>`) {
		t.Fatalf("dry run: %d, want the count 10:\n%s", st, page)
	}
	for id, n := range a.snapshot() {
		if n != 1 {
			t.Fatalf("after the dry run sink a has %s %d times", id, n)
		}
	}
	if st, page := postForm("replay", url.Values{"csrf": {m[1]}, "sink": {"s/nope"}, "since": {since}}); st != 400 || !strings.Contains(page, "There is no sink") {
		t.Errorf("replay to an unknown sink: %d", st)
	}

	form.Set("confirm", "yes")
	if st, page := postForm("replay", form); st != 200 || !strings.Contains(page, "Replaying 10 events of s") {
		t.Fatalf("replay: %d\n%s", st, page)
	}
	// The outcome line is the console's own: a link's ?done= is not shown.
	resp, err = hc.Get(console + "?done=" + url.QueryEscape("Sink compromised: see evil.example"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(raw), "evil.example") {
		t.Errorf("a ?done= message from a link is shown on the console")
	}
	waitFor(t, 60*time.Second, "the replayed events at sink a", func() bool {
		n := 0
		for _, k := range a.snapshot() {
			n += k
		}
		return n == 30
	})
	for i := range 20 {
		want := 1
		if i >= 10 {
			want = 2
		}
		if got := a.snapshot()[fmt.Sprintf("msg_%d", i)]; got != want {
			t.Errorf("sink a received msg_%d %d times, want %d", i, got, want)
		}
	}
	for id, n := range b.snapshot() {
		if n != 1 {
			t.Errorf("sink b received %s %d times: the replay was for sink a only", id, n)
		}
	}
}

// TestConsoleSignInBehindAProxy: behind a reverse proxy that rewrites Host
// (nginx's default proxy_pass), the browser's Origin is the proxy's site:
// the console's sign-in takes it when the proxy says it forwarded that
// host, refuses any other site, and sets a Secure cookie when the proxy
// ended TLS (X-Forwarded-Proto: https).
func TestConsoleSignInBehindAProxy(t *testing.T) {
	t.Parallel()
	secretText, _ := mustSecret(t)
	rec := newRecorder(t)
	gw := startGateway(t, Config{ConsoleToken: "tok", Sources: []SourceConfig{{
		Name: "s", Verify: VerifyConfig{HMACSecrets: []string{secretText}},
		Sinks: []SinkConfig{{Name: "a", HTTP: &HTTPSinkConfig{URL: rec.srv.URL}}},
	}}})
	hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		name   string
		header map[string]string
		ok     bool
		secure bool
	}{
		{"the forwarded host", map[string]string{"Origin": "https://edge.example.com", "X-Forwarded-Host": "edge.example.com"}, true, false},
		{"TLS ended at the proxy", map[string]string{"Origin": "https://edge.example.com", "X-Forwarded-Host": "edge.example.com", "X-Forwarded-Proto": "https"}, true, true},
		{"another site", map[string]string{"Origin": "https://evil.example", "X-Forwarded-Host": "edge.example.com"}, false, false},
		{"no forwarded host", map[string]string{"Origin": "https://edge.example.com"}, false, false},
	} {
		resp, ck := consoleSignIn(t, hc, gw.srv.URL, "tok", tc.header)
		if tc.ok != (resp.StatusCode == http.StatusSeeOther && ck != nil) {
			t.Errorf("%s: sign-in answered %d (cookie %v), want signed in: %v", tc.name, resp.StatusCode, ck != nil, tc.ok)
			continue
		}
		if ck != nil && ck.Secure != tc.secure {
			t.Errorf("%s: cookie Secure %v, want %v", tc.name, ck.Secure, tc.secure)
		}
	}
}

// TestConsoleSignOut: the gateway console has a sign-out (a POST with the
// CSRF token from the console's own origin) that clears the session
// cookie; a sign-out form another site posts is refused and changes
// nothing.
func TestConsoleSignOut(t *testing.T) {
	t.Parallel()
	secretText, _ := mustSecret(t)
	rec := newRecorder(t)
	gw := startGateway(t, Config{ConsoleToken: "tok", Sources: []SourceConfig{{
		Name: "s", Verify: VerifyConfig{HMACSecrets: []string{secretText}},
		Sinks: []SinkConfig{{Name: "a", HTTP: &HTTPSinkConfig{URL: rec.srv.URL}}},
	}}})
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	console := gw.srv.URL + ConsolePath
	postForm := func(path, origin string, form url.Values) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", console+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	st, page := postForm("signin", gw.srv.URL, url.Values{"token": {"tok"}})
	m := regexp.MustCompile(`action="/_longhook/console/signout"[^<]*<input type="hidden" name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(page)
	if st != 200 || m == nil {
		t.Fatalf("signed in: %d, want a sign-out form with the CSRF token:\n%s", st, page)
	}
	if st, _ := postForm("signout", "https://evil.example", url.Values{"csrf": {m[1]}}); st != http.StatusForbidden {
		t.Errorf("a cross-site sign-out: %d, want 403", st)
	}
	if st, _ := postForm("signout", gw.srv.URL, url.Values{"csrf": {"forged"}}); st != http.StatusForbidden {
		t.Errorf("a sign-out without the CSRF token: %d, want 403", st)
	}
	if _, page := postForm("signin", gw.srv.URL, url.Values{"token": {"tok"}}); !strings.Contains(page, `id="replay"`) {
		t.Fatal("a refused sign-out signed the console out")
	}
	st, page = postForm("signout", gw.srv.URL, url.Values{"csrf": {m[1]}})
	if st != 200 || !strings.Contains(page, `id="token"`) || strings.Contains(page, `id="replay"`) {
		t.Fatalf("after signing out: %d, want the sign-in page:\n%s", st, page)
	}
}

// TestConsoleShowsTheRetryQueue: a sink that is down has its failed
// forwards in the retry table and its cursor past them, so its lag reads 0
// and nothing is in flight between attempts; the console shows the retry
// queue (forwards waiting for their next attempt) so such a sink does not
// look healthy — issue 16 asks for each sink's lag, errors and retry queue.
func TestConsoleShowsTheRetryQueue(t *testing.T) {
	t.Parallel()
	secretText, secret := mustSecret(t)
	down, up := newRecorder(t), newRecorder(t)
	down.fail.Store(true)
	gw := startGateway(t, Config{ConsoleToken: "tok", Sources: []SourceConfig{{
		Name: "s", Verify: VerifyConfig{HMACSecrets: []string{secretText}},
		Sinks: []SinkConfig{
			// A first retry an hour away: the queue holds still while the
			// page is read.
			{Name: "down", HTTP: &HTTPSinkConfig{URL: down.srv.URL}, Retry: RetryConfig{Initial: time.Hour, Max: time.Hour}},
			{Name: "up", HTTP: &HTTPSinkConfig{URL: up.srv.URL}},
		},
	}}})
	for i := range 3 {
		if s, body := post(t, gw.srv.Client(), gw.srv.URL+"/hooks/s", secret, fmt.Sprintf("msg_%d", i), time.Now(), testBody(i)); s != 200 {
			t.Fatalf("post %d: %d %s", i, s, body)
		}
	}
	waitFor(t, 60*time.Second, "three forwards waiting to retry at the down sink", func() bool {
		p, err := gw.inbox.PendingRetries(context.Background())
		return err == nil && p["s/down"] == 3 && up.count() == 3
	})

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	req, _ := http.NewRequest("POST", gw.srv.URL+ConsolePath+"signin", strings.NewReader(url.Values{"token": {"tok"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", gw.srv.URL)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(raw)
	row := func(sink string) string {
		m := regexp.MustCompile(`(?s)<tr data-sink="` + regexp.QuoteMeta(sink) + `">.*?</tr>`).FindString(page)
		if m == "" {
			t.Fatalf("no row for sink %s:\n%s", sink, page)
		}
		return m
	}
	if r := row("s/down"); !strings.Contains(r, `queue">3 waiting</span>`) {
		t.Errorf("the down sink's row does not show its 3 forwards waiting to retry:\n%s", r)
	}
	if r := row("s/up"); !strings.Contains(r, `queue">0 waiting</span>`) {
		t.Errorf("the healthy sink's row does not show an empty retry queue:\n%s", r)
	}
}

// TestConsoleRecentSaysWhy: every refused request in the console's recent
// list says why — a body over max_body_bytes and a wrong method were
// listed as too_large / invalid with an empty reason.
func TestConsoleRecentSaysWhy(t *testing.T) {
	t.Parallel()
	secretText, secret := mustSecret(t)
	gw := startGateway(t, Config{ConsoleToken: "tok", MaxBodyBytes: 1024, Sources: []SourceConfig{{
		Name: "s", Verify: VerifyConfig{HMACSecrets: []string{secretText}},
		Sinks: []SinkConfig{{Name: "d", Discard: &DiscardSinkConfig{}}},
	}}})
	c := gw.srv.Client()
	if s, body := post(t, c, gw.srv.URL+"/hooks/s", secret, "msg_big", time.Now(), []byte(`{"x":"`+strings.Repeat("a", 2048)+`"}`)); s != http.StatusRequestEntityTooLarge {
		t.Fatalf("a body over the limit: %d %s", s, body)
	}
	resp, err := c.Get(gw.srv.URL + "/hooks/s")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := map[string]string{"too_large": "body exceeds the limit of 1024 bytes", "invalid": "method GET"}
	items := gw.recent.list()
	if len(items) != 2 {
		t.Fatalf("recent: %+v, want the two refusals", items)
	}
	for _, it := range items {
		if w, ok := want[it.Outcome]; !ok || !strings.Contains(it.Reason, w) {
			t.Errorf("recent %s (%d): reason %q, want it to contain %q", it.Outcome, it.Status, it.Reason, w)
		}
	}
}

// TestConsoleSignInEnds: a console sign-in lasts 24 hours. The cookie was
// an HMAC of the token alone, so a copy of it stayed good until
// console_token changed; a cookie whose end was moved later is refused.
func TestConsoleSignInEnds(t *testing.T) {
	t.Parallel()
	var skew atomic.Int64 // the gateway's clock runs this far ahead of the real one
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	gw := startGateway(t, Config{ConsoleToken: "tok", Sources: []SourceConfig{{
		Name: "s", Verify: VerifyConfig{HMACSecrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
		Sinks: []SinkConfig{{Name: "d", Discard: &DiscardSinkConfig{}}},
	}}}, WithClock(clock))
	hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	_, ck := consoleSignIn(t, hc, gw.srv.URL, "tok", map[string]string{"Origin": gw.srv.URL})
	if ck == nil || ck.MaxAge != 24*60*60 {
		t.Fatalf("sign-in cookie %v, want one with Max-Age 86400", ck)
	}
	signedIn := func(value string) bool {
		t.Helper()
		req, _ := http.NewRequest("GET", gw.srv.URL+ConsolePath, nil)
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: value})
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		page, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(page), `id="replay"`)
	}
	if !signedIn(ck.Value) {
		t.Fatal("not signed in right after signing in")
	}
	end, mac, _ := strings.Cut(ck.Value, ".")
	n, _ := strconv.ParseInt(end, 10, 64)
	if signedIn(strconv.FormatInt(n+365*24*3600, 10) + "." + mac) {
		t.Error("a cookie whose end was moved a year later is accepted")
	}
	skew.Store(int64(24*time.Hour - time.Minute))
	if !signedIn(ck.Value) {
		t.Error("signed out a minute before the sign-in's 24 hours are up")
	}
	skew.Store(int64(24*time.Hour + time.Second))
	if signedIn(ck.Value) {
		t.Error("still signed in 24 hours after signing in")
	}
}

// consoleSignIn posts token to the console's sign-in of the gateway at
// base with header set, and returns the answer (its body closed) and the
// console cookie it set, if any.
func consoleSignIn(t *testing.T, hc *http.Client, base, token string, header map[string]string) (*http.Response, *http.Cookie) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+ConsolePath+"signin", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "longhook_gateway_console" {
			return resp, c
		}
	}
	return resp, nil
}

// TestSinkKindNamesEveryTransport: the console's Kind column names every
// transport a sink can have as the config spells it — Kafka, AMQP, MQTT
// and Pub/Sub sinks were all shown as "other". The transports are found
// by reflection, so a new one without a name fails here.
func TestSinkKindNamesEveryTransport(t *testing.T) {
	t.Parallel()
	typ := reflect.TypeFor[SinkConfig]()
	n := 0
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Type.Kind() != reflect.Pointer || !strings.HasSuffix(f.Type.Elem().Name(), "SinkConfig") {
			continue
		}
		n++
		var c SinkConfig
		reflect.ValueOf(&c).Elem().Field(i).Set(reflect.New(f.Type.Elem()))
		if got, want := sinkKind(c), f.Tag.Get("yaml"); got != want {
			t.Errorf("a %s sink is shown as %q, want %q", f.Name, got, want)
		}
	}
	if n < 8 {
		t.Errorf("found %d transports, want at least 8", n)
	}
}
