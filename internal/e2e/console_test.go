package e2e

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsole drives the operator console in headless Chromium against a
// real serve and a real receiver: sign in, create a webhook (secret shown
// once), a delivery appearing live, a failure explained, redeliver,
// recover after a dry run, rotate, project isolation, inert hostile data,
// a refused cross-origin POST, the CSP, and revocation ending a session.
func TestConsole(t *testing.T) {
	br := newBrowser(t)
	s := startServe(t)
	c := s.client(t)
	base := s.URL()
	var failing atomic.Bool
	rcv := newReceiver(t, func(int, received) int {
		if failing.Load() {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})

	// Sign in: the console redirects to the sign-in page first.
	br.run("open console", chromedp.Navigate(base+"/console/"), chromedp.WaitVisible(chromedp.ID("#key")))
	br.shot("signin")
	br.signIn(base, s.APIKey)
	if h := br.text("h1"); h != "Overview" {
		t.Fatalf("after sign-in the page is %q, want Overview", h)
	}

	// Create a webhook: the secret is shown once.
	br.run("create webhook",
		chromedp.Navigate(base+"/console/webhooks"),
		chromedp.SendKeys(chromedp.ID("#name"), "orders"),
		chromedp.SendKeys(chromedp.ID("#uri"), rcv.URL("/hook")),
		chromedp.Click(chromedp.CSS(`input[name=events][value="batch.succeeded"]`)),
		chromedp.Click(chromedp.ID("#create")),
		chromedp.WaitVisible(chromedp.ID("#secret")), loaded)
	secret := br.value("secret")
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("created page shows secret %q, want whsec_…", secret)
	}
	br.shot("webhook-created")
	hookHref := get(br, "webhook link", chromedp.AttributeValue(chromedp.CSS(`a.btn.primary`), "href"))
	hookID := strings.TrimPrefix(hookHref.Value, "/console/webhooks/")
	hookURL := base + "/console/webhooks/" + hookID
	br.run("open webhook", chromedp.Navigate(hookURL), chromedp.WaitVisible(chromedp.ID("#deliveries")))
	if strings.Contains(br.html(), secret) {
		t.Fatal("the webhook page shows the signing secret again")
	}

	// Send a test event from the console; then a delivery published by the
	// API appears live, without a reload.
	br.run("send test event",
		chromedp.SetValue(chromedp.ID("#test-type"), "batch.failed"),
		chromedp.Click(chromedp.ID("#send-test")))
	br.waitText(".flash", "Test event sent")
	rcv.waitFor(t, 60*time.Second, "the test event", func(rs []received) bool { return len(rs) >= 1 })
	br.run("page marker", chromedp.Navigate(hookURL), chromedp.WaitVisible(chromedp.ID("#live")))
	get(br, "mark the page", chromedp.Evaluate[bool](`window.__noReload = true`))
	ev := c.publish(t, map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": "batches/live"}})
	live := listDeliveries(t, c, hookID)[0]
	br.waitText("#deliveries tbody", live.ID)
	br.waitText(`#deliveries tr[data-id="`+live.ID+`"]`, "succeeded")
	if !get(br, "no reload", chromedp.Evaluate[bool](`window.__noReload === true`)) {
		t.Fatal("the page reloaded: the delivery did not arrive live")
	}
	br.shot("webhook")
	br.run("webhooks", chromedp.Navigate(base+"/console/webhooks"), chromedp.WaitVisible(chromedp.CSS("table")))
	br.shot("webhooks")
	_ = ev

	// The receiver fails: the attempt shows the status and the reason.
	failing.Store(true)
	c.publish(t, map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": "batches/fails"}})
	var bad deliveryResource
	pollUntil(t, 60*time.Second, 50*time.Millisecond, "a failed attempt", func() (bool, string) {
		bad = listDeliveries(t, c, hookID)[0]
		return bad.AttemptCount >= 1 && bad.LastError != "", bad.Status
	})
	deliveryURL := base + "/console/deliveries/" + bad.ID
	br.reloadUntil(deliveryURL, ".attempt", "HTTP 500")
	if why := br.text(".attempt .explain"); !strings.Contains(why, "failed with HTTP 500") || !strings.Contains(why, "redeliver") {
		t.Errorf("the failed attempt explains %q, want the 500 in words and what to do", why)
	}
	br.shot("delivery-failed")

	// Fix it and redeliver: success.
	failing.Store(false)
	br.run("redeliver", chromedp.Click(chromedp.ID("#redeliver")), chromedp.WaitVisible(chromedp.CSS(".flash")), loaded)
	br.reloadUntil(deliveryURL, "#delivery-status", "succeeded")
	br.shot("delivery")

	// Recover a time range: disabled, an event is skipped; enabled again,
	// the dry run counts it, the recovery delivers it.
	since := time.Now().UTC().Add(-10 * time.Minute).Format("2006-01-02T15:04")
	br.run("disable", chromedp.Navigate(hookURL), chromedp.Click(chromedp.CSS(`form[action$="/disable"] button`)))
	br.waitText(".flash", "Webhook disabled.")
	c.publish(t, map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": "batches/skipped"}})
	var skipped deliveryResource
	pollUntil(t, 60*time.Second, 50*time.Millisecond, "a skipped delivery", func() (bool, string) {
		skipped = listDeliveries(t, c, hookID)[0]
		return skipped.Status == "skipped", skipped.Status
	})
	br.run("enable", chromedp.Click(chromedp.CSS(`form[action$="/enable"] button`)))
	br.waitText(".flash", "Webhook enabled.")
	br.run("dry run",
		chromedp.SetValue(chromedp.ID("#recover-since"), since),
		chromedp.Click(chromedp.ID("#recover-dry")),
		chromedp.WaitVisible(chromedp.ID("#recover-count")), loaded)
	if n := br.text("#recover-count"); n != "1" {
		t.Fatalf("the dry run counts %s deliveries, want 1 (the skipped one)", n)
	}
	br.shot("recover-dry-run")
	br.run("recover", chromedp.Click(chromedp.ID("#recover-go")), chromedp.WaitVisible(chromedp.CSS(".flash")), loaded)
	if f := br.text(".flash"); !strings.Contains(f, "1 deliveries re-queued") {
		t.Errorf("after recovery the page says %q", f)
	}
	pollUntil(t, 60*time.Second, 50*time.Millisecond, "the recovered delivery delivered", func() (bool, string) {
		var d deliveryResource
		c.call(t, "GET", "/v1beta/deliveries/"+skipped.ID, nil, &d)
		return d.Status == "succeeded", d.Status
	})

	// Rotate the secret: a new one, shown once.
	br.run("rotate", chromedp.Navigate(hookURL), chromedp.WaitVisible(chromedp.ID("#rotate")))
	br.acceptConfirms()
	br.run("rotate", chromedp.Click(chromedp.ID("#rotate")), chromedp.WaitVisible(chromedp.ID("#secret")), loaded)
	rotated := br.value("secret")
	if !strings.HasPrefix(rotated, "whsec_") || rotated == secret {
		t.Fatalf("rotation shows %q, want a new whsec_ secret", rotated)
	}

	// Hostile event data renders inert: no script runs.
	hostile := c.publish(t, map[string]any{"type": "batch.succeeded", "data": map[string]any{
		"id": "batches/x", "note": `</pre><script>window.__xss=1</script><img src=x onerror="window.__xss=2">`}})
	br.run("hostile event", chromedp.Navigate(base+"/console/events?id="+hostile.ID), chromedp.WaitVisible(chromedp.ID("#event-payload")))
	if p := br.text("#event-payload"); !strings.Contains(p, "<script>window.__xss=1</script>") {
		t.Errorf("the payload is not shown as text: %q", p)
	}
	xss := get(br, "no script ran", chromedp.Evaluate[bool](`window.__xss !== undefined`))
	imgs := get(br, "no elements", chromedp.Evaluate[int](`document.querySelectorAll("main img, main script").length`))
	if xss || imgs != 0 {
		t.Fatalf("hostile data ran (__xss set: %v) or became elements (%d)", xss, imgs)
	}
	br.shot("event")
	br.run("events", chromedp.Navigate(base+"/console/events"), chromedp.WaitVisible(chromedp.CSS("table")))
	br.shot("events")

	// A job's page: its timeline holds the events it emitted, in order,
	// each linking to the event and to its deliveries; its webhook_config
	// and user_metadata are shown.
	var in struct {
		ID string `json:"id"`
	}
	c.call(t, "POST", "/v1beta/interactions", map[string]any{
		"model": "gemini-2.5-flash", "input": "console timeline", "background": true,
		"webhook_config": map[string]any{"uris": []string{rcv.URL("/job")}, "user_metadata": map[string]any{"order": "A-17"}},
	}, &in)
	rcv.waitFor(t, 60*time.Second, "the interaction's event", func(rs []received) bool {
		for _, r := range rs {
			if r.Header.Get("x-e2e-path") == "/job" {
				return true
			}
		}
		return false
	})
	jobURL := base + "/console/jobs/" + in.ID
	br.reloadUntil(jobURL, "#timeline .emitted", "succeeded")
	items := get(br, "timeline", chromedp.Evaluate[[]string](`[...document.querySelectorAll("#timeline li")].map(li => li.textContent.replace(/\s+/g, " ").trim())`))
	if len(items) < 2 || !strings.Contains(items[0], "accepted") || !strings.Contains(items[len(items)-1], "emitted interaction.completed") {
		t.Fatalf("timeline = %q, want accepted first and the emitted interaction.completed last", items)
	}
	evHref := get(br, "event link", chromedp.AttributeValue(chromedp.CSS(`#timeline .emitted a[href^="/console/events?id="]`), "href"))
	dHref := get(br, "delivery link", chromedp.AttributeValue(chromedp.CSS(`#timeline .emitted a[href^="/console/deliveries/"]`), "href"))
	if !evHref.Exists || !dHref.Exists {
		t.Fatalf("the emitted event links to %q and its delivery to %q", evHref.Value, dHref.Value)
	}
	if cfg := br.text("#webhook-config"); !strings.Contains(cfg, rcv.URL("/job")) {
		t.Errorf("webhook_config shows %q, want the job's URI", cfg)
	}
	if md := br.text("#user-metadata"); !strings.Contains(md, "A-17") {
		t.Errorf("user_metadata shows %q", md)
	}
	br.shot("job")
	br.run("job's delivery", chromedp.Navigate(base+dHref.Value), chromedp.WaitVisible(chromedp.ID("#delivery-status")))
	if st := br.text("#delivery-status"); st != "succeeded" {
		t.Errorf("the job event's delivery is %q", st)
	}
	br.run("job's event", chromedp.Navigate(base+evHref.Value), chromedp.WaitVisible(chromedp.ID("#event-payload")))
	if p := br.text("#event-payload"); !strings.Contains(p, in.ID) || !strings.Contains(p, "interaction.completed") {
		t.Errorf("the job's event payload is %q", p)
	}
	br.run("jobs", chromedp.Navigate(base+"/console/jobs"), chromedp.WaitVisible(chromedp.CSS("table")))
	br.shot("jobs")
	br.run("admin", chromedp.Navigate(base+"/console/admin"), chromedp.WaitVisible(chromedp.CSS("table")))
	br.shot("admin")
	br.run("overview", chromedp.Navigate(base+"/console/"), chromedp.WaitVisible(chromedp.CSS("svg")))
	br.shot("overview")

	// The CSP header is present and forbids inline code; a cross-origin
	// POST with a valid session and token is refused.
	hc := consoleHTTP(t)
	sessionCookie := signInHTTP(t, hc, base, s.APIKey)
	req, _ := http.NewRequest("GET", base+"/console/webhooks", nil)
	req.AddCookie(sessionCookie)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	form := url.Values{"csrf": {"irrelevant"}}
	req, _ = http.NewRequest("POST", hookURL+"/disable", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.AddCookie(sessionCookie)
	if resp, err = hc.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST answered %d, want 403", resp.StatusCode)
	}
	// The same from a real cross-origin page in the browser. Its type is
	// set: sniffed, "<form" is text/plain, and no script of it would run.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<form id=f method=post action=%q><input name=csrf value=x></form><script>document.getElementById("f").submit()</script>`, hookURL+"/disable")
	}))
	defer evil.Close()
	br.run("cross-origin form", chromedp.Navigate(strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)), chromedp.WaitReady(chromedp.CSS("body")))
	// The form's POST leaves the page after it loaded: wait for its
	// answer, or the check below could run before the POST arrives.
	br.waitJS("the answer to the cross-origin form", fmt.Sprintf(`location.origin === %q`, base))
	br.reloadUntil(hookURL, ".badge.big", "enabled")
	var wh webhookResource
	c.call(t, "GET", "/v1beta/webhooks/"+hookID, nil, &wh)
	if wh.State != "enabled" {
		t.Fatalf("a cross-origin form changed the webhook: state %s", wh.State)
	}

	// A project key sees only its project; revoking it ends its session.
	var proj struct {
		ID     string `json:"id"`
		APIKey struct {
			ID  string `json:"id"`
			Key string `json:"key"`
		} `json:"api_key"`
	}
	c.call(t, "POST", "/v1beta/projects", map[string]any{"name": "other"}, &proj)
	other := newBrowser(t)
	other.signIn(base, proj.APIKey.Key)
	other.run("other webhooks", chromedp.Navigate(base+"/console/webhooks"), chromedp.WaitVisible(chromedp.CSS("table")))
	if h := other.html(); strings.Contains(h, hookID) || strings.Contains(h, `name="project"`) {
		t.Fatal("a project key sees another project's webhook or the project switcher")
	}
	other.run("other webhook", chromedp.Navigate(hookURL), chromedp.WaitVisible(chromedp.CSS("h1")))
	if h := other.text("h1"); h != "Not found" {
		t.Fatalf("a project key opening another project's webhook sees %q", h)
	}
	other.run("other delivery", chromedp.Navigate(deliveryURL), chromedp.WaitVisible(chromedp.CSS("h1")))
	if h := other.text("h1"); h != "Not found" {
		t.Fatalf("a project key opening another project's delivery sees %q", h)
	}
	c.call(t, "POST", "/v1beta/keys/"+proj.APIKey.ID+":revoke", map[string]any{}, nil)
	other.run("after revoke", chromedp.Navigate(base+"/console/webhooks"), chromedp.WaitVisible(chromedp.ID("#key")))
}

// signInHTTP signs in without a browser and returns the session cookie.
func signInHTTP(t testing.TB, hc *http.Client, base, key string) *http.Cookie {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/console/signin", strings.NewReader(url.Values{"key": {key}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "longhook_console" {
			if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
				t.Errorf("session cookie: HttpOnly %v, SameSite %v", ck.HttpOnly, ck.SameSite)
			}
			return ck
		}
	}
	t.Fatalf("sign-in set no session cookie (status %d)", resp.StatusCode)
	return nil
}

// TestGatewayConsole: the gateway's console, behind its token, shows a
// refused forgery with the reason, and a sink's lag while the sink's
// receiver holds a forward; then it replays the source to the sink from a
// time, after a dry run, and refuses a forged replay.
func TestGatewayConsole(t *testing.T) {
	br := newBrowser(t)
	s := startServe(t)
	c := s.client(t)
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseSink := func() { releaseOnce.Do(func() { close(release) }) }
	held := make(chan struct{}, 1)
	var forwards atomic.Int64 // requests the sink received
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forwards.Add(1)
		select {
		case held <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(sink.Close)
	t.Cleanup(releaseSink)

	hook := c.createWebhook(t, "http://127.0.0.1:9/not-yet", "batch.succeeded")
	gw := startGateway(t, func(string) string {
		return fmt.Sprintf("shutdown_timeout: 1s\nconsole_token: console-secret\nsources:\n"+
			"  - name: orders\n    verify:\n      hmac_secrets: [%q]\n    sinks:\n      - name: app\n        http: {url: %q}\n",
			hook.NewSigningSecret, sink.URL)
	})
	c.call(t, "PATCH", "/v1beta/webhooks/"+hook.ID, map[string]any{"uri": gw.URL + "/hooks/orders"}, nil)
	c.publish(t, map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": "batches/held"}})
	select {
	case <-held:
	case <-time.After(60 * time.Second):
		t.Fatalf("the sink never received the forward\n%s", tail(gw.stderr.String(), 20))
	}

	// The sink can hold the forward before the intake that took the
	// event has recorded it (the handler records after it answered, and
	// the forwarder is another goroutine): the accepted request must be
	// in the recent list before the forgery, or under load the forgery's
	// row was not the newest. The metric is counted after the record.
	mhc := newHTTPClient(t, 10*time.Second)
	pollUntil(t, 30*time.Second, 10*time.Millisecond, "the accepted request recorded", func() (bool, string) {
		n := gw.metric(t, mhc, "longhook_gateway_received_total", map[string]string{"source": "orders", "outcome": "accepted"})
		return n >= 1, fmt.Sprintf("accepted %v", n)
	})

	// A forgery: a well-formed request with a made-up signature.
	req, _ := http.NewRequest("POST", gw.URL+"/hooks/orders", strings.NewReader(`{"type":"batch.succeeded","data":{}}`))
	req.Header.Set("webhook-id", "msg_forged")
	req.Header.Set("webhook-timestamp", fmt.Sprint(time.Now().Unix()))
	req.Header.Set("webhook-signature", "v1,bm90IGEgcmVhbCBzaWduYXR1cmUgYXQgYWxsIGF0IGFsbCE=")
	resp, err := newHTTPClient(t, 10*time.Second).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 4 {
		t.Fatalf("the forgery was answered %d", resp.StatusCode)
	}

	console := gw.URL + "/_longhook/console/"
	br.run("gateway sign-in", chromedp.Navigate(console), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "console-secret"), chromedp.Click(chromedp.ID("signin")))
	br.waitText("#recent", "msg_forged")
	if row := br.text("#recent tbody tr:first-child"); !strings.Contains(row, "msg_forged") || !strings.Contains(strings.ToLower(row), "signature") {
		t.Errorf("the refused forgery's row says %q, want its id and the signature reason", row)
	}
	br.reloadUntil(console, `#sinks tr[data-sink] .lag`, "1 event behind")
	br.shot("gateway")

	// The sink recovers and catches up.
	releaseSink()
	br.reloadUntil(console, `#sinks tr[data-sink] .lag`, "0 events behind")
	before := forwards.Load()

	// A replay forged from another origin, or without the form's token,
	// is refused and replays nothing.
	hc := consoleHTTP(t)
	req, _ = http.NewRequest("POST", console+"signin", strings.NewReader(url.Values{"token": {"console-secret"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", gw.URL)
	if resp, err = hc.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var gwCookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "longhook_gateway_console" {
			gwCookie = ck
		}
	}
	if gwCookie == nil {
		t.Fatalf("gateway console sign-in set no cookie (status %d)", resp.StatusCode)
	}
	csrf := get(br, "the form's token", chromedp.Value(chromedp.CSS(`#replay input[name=csrf]`)))
	for _, forged := range []struct{ origin, csrf string }{{"https://evil.example", csrf}, {gw.URL, "forged"}} {
		form := url.Values{"csrf": {forged.csrf}, "sink": {"orders/app"}, "since": {"2000-01-01T00:00"}, "confirm": {"yes"}}
		req, _ = http.NewRequest("POST", console+"replay", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", forged.origin)
		req.AddCookie(gwCookie)
		if resp, err = hc.Do(req); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("replay from origin %s with token %.8q answered %d, want 403", forged.origin, forged.csrf, resp.StatusCode)
		}
	}

	// Replay from an hour ago: the dry run counts the stored event, the
	// replay sends it to the sink again.
	br.run("replay dry run",
		chromedp.Navigate(console), chromedp.WaitVisible(chromedp.ID("replay-dry")),
		chromedp.SetValue(chromedp.ID("replay-since"), time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04")),
		chromedp.Click(chromedp.ID("replay-dry")),
		chromedp.WaitVisible(chromedp.ID("replay-count")), loaded)
	if n := br.text("#replay-count"); n != "1" {
		t.Fatalf("the replay's dry run counts %s events, want 1", n)
	}
	if got := forwards.Load(); got != before {
		t.Fatalf("the sink received %d requests during the dry run and the forged replays", got-before)
	}
	br.shot("gateway-replay")
	br.run("replay", chromedp.Click(chromedp.ID("replay-go")), chromedp.WaitVisible(chromedp.CSS(".flash")), loaded)
	if f := br.text(".flash"); !strings.Contains(f, "Replaying 1 event of orders") || !strings.Contains(f, "orders/app") {
		t.Errorf("after the replay the console says %q", f)
	}
	pollUntil(t, 60*time.Second, 50*time.Millisecond, "the replayed event at the sink", func() (bool, string) {
		return forwards.Load() > before, fmt.Sprint(forwards.Load()-before, " new requests")
	})
}

// TestConsoleJobStatesAsTheAPI: the Jobs pages name a job's state as the
// API shows its resource — an interaction "completed", a batch
// BATCH_STATE_SUCCEEDED — not by the server's internal state names
// ("succeeded"), which no API answer uses.
func TestConsoleJobStatesAsTheAPI(t *testing.T) {
	t.Parallel()
	s := startServe(t, withFlags("--sim-duration", "batch=0s,video=0s,interaction=0s"))
	c := s.client(t)
	var in struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	c.call(t, "POST", "/v1beta/interactions", map[string]any{"model": "gemini-2.5-flash", "input": "hello"}, &in)
	if in.Status != "completed" {
		t.Fatalf("interaction status %q, want completed", in.Status)
	}
	var b struct {
		Name     string `json:"name"`
		Metadata struct {
			State string `json:"state"`
		} `json:"metadata"`
	}
	c.call(t, "POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", map[string]any{"batch": map[string]any{
		"displayName": "states", "inputConfig": map[string]any{"requests": map[string]any{"requests": []any{
			map[string]any{"request": map[string]any{"contents": []any{map[string]any{"parts": []any{map[string]any{"text": "hi"}}}}}}}}}}}, &b)
	pollUntil(t, 60*time.Second, 50*time.Millisecond, "batch never succeeded", func() (bool, string) {
		c.call(t, "GET", "/v1beta/"+b.Name, nil, &b)
		return b.Metadata.State == "BATCH_STATE_SUCCEEDED", b.Metadata.State
	})
	hc := consoleHTTP(t)
	cookie := signInHTTP(t, hc, s.URL(), s.APIKey)
	page := func(path string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", s.URL()+path, nil)
		req.AddCookie(cookie)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return string(body)
	}
	badge := regexp.MustCompile(`class="badge[^"]*">([^<]*)</span>`)
	badges := func(html string) []string {
		var out []string
		for _, m := range badge.FindAllStringSubmatch(html, -1) {
			out = append(out, m[1])
		}
		return out
	}
	batchID := strings.TrimPrefix(b.Name, "batches/")
	for path, want := range map[string]string{
		"/console/jobs/" + in.ID:   "completed",
		"/console/jobs/" + batchID: "BATCH_STATE_SUCCEEDED",
	} {
		got := badges(page(path))
		if len(got) == 0 || got[0] != want {
			t.Errorf("%s: state badge %q, want %q first", path, got, want)
		}
	}
	list := badges(page("/console/jobs"))
	if !slices.Contains(list, "completed") || !slices.Contains(list, "BATCH_STATE_SUCCEEDED") || slices.Contains(list, "succeeded") {
		t.Errorf("/console/jobs: state badges %q, want completed and BATCH_STATE_SUCCEEDED, no internal 'succeeded'", list)
	}

	// The job page shows the job as the API answers GET of its resource,
	// not the server's stored request and result records (Go field names
	// such as PromptTokens, the executor's base URL).
	resource := regexp.MustCompile(`(?s)<pre class="code" id="job-resource">(.*?)</pre>`)
	for path, want := range map[string][]string{
		"/console/jobs/" + in.ID:   {`"id": "` + in.ID + `"`, `"status": "completed"`, `"input": "hello"`},
		"/console/jobs/" + batchID: {`"name": "` + b.Name + `"`, `"state": "BATCH_STATE_SUCCEEDED"`},
	} {
		m := resource.FindStringSubmatch(page(path))
		if m == nil {
			t.Errorf("%s: no #job-resource", path)
			continue
		}
		shown := html.UnescapeString(m[1])
		for _, w := range want {
			if !strings.Contains(shown, w) {
				t.Errorf("%s: the resource shown lacks %s:\n%s", path, w, shown)
			}
		}
		for _, internal := range []string{"PromptTokens", `"base"`, `"Request"`} {
			if strings.Contains(shown, internal) {
				t.Errorf("%s: the resource shown holds the internal %s:\n%s", path, internal, shown)
			}
		}
	}
}

// TestConsoleJobNamesItsWebhooks: a job's timeline names the webhooks its
// events were delivered to (it showed "webhook <id>").
func TestConsoleJobNamesItsWebhooks(t *testing.T) {
	t.Parallel()
	s := startServe(t, withFlags("--sim-duration", "batch=0s,video=0s,interaction=0s"))
	c := s.client(t)
	rcv := newReceiver(t, nil)
	var wh webhookResource
	c.call(t, "POST", "/v1beta/webhooks", map[string]any{"name": "nightly-results", "uri": rcv.URL("/hook"), "subscribed_events": []string{"batch.succeeded"}}, &wh)
	var b struct {
		Name string `json:"name"`
	}
	c.call(t, "POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", map[string]any{"batch": map[string]any{
		"displayName": "named", "inputConfig": map[string]any{"requests": map[string]any{"requests": []any{
			map[string]any{"request": map[string]any{"contents": []any{map[string]any{"parts": []any{map[string]any{"text": "hi"}}}}}}}}}}}, &b)
	hc := consoleHTTP(t)
	cookie := signInHTTP(t, hc, s.URL(), s.APIKey)
	want := `<span>nightly-results</span>`
	pollUntil(t, 60*time.Second, 50*time.Millisecond, "the job page naming its webhook", func() (bool, string) {
		req, _ := http.NewRequest("GET", s.URL()+"/console/jobs/"+strings.TrimPrefix(b.Name, "batches/"), nil)
		req.AddCookie(cookie)
		resp, err := hc.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		i := strings.Index(string(body), `id="timeline"`)
		if i < 0 {
			return false, fmt.Sprintf("status %d, no timeline", resp.StatusCode)
		}
		return strings.Contains(string(body[i:]), want), string(body[i:min(len(body), i+1500)])
	})
}
