package console_test

import (
	"bufio"
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestEventPageShowsEveryDelivery (issue 16): an event's page lists every
// delivery it caused even when other events' deliveries were made in the
// same millisecond (one batch publish) and in the minutes around it — the
// page once read only a few of the newest deliveries near the event and
// showed "Deliveries it caused (0)" on a busy store.
func TestEventPageShowsEveryDelivery(t *testing.T) {
	f := newStreamFixture(t, nil)
	ctx := t.Context()
	at := time.Now().UTC().Truncate(time.Millisecond)
	target := storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, at, f.hook)
	batch := []core.NewEvent{target}
	for i := range 30 { // the same millisecond (one batch publish)
		_ = i
		batch = append(batch, storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, at, f.hook))
	}
	for i := range 30 { // the next seconds
		batch = append(batch, storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, at.Add(time.Duration(i+1)*time.Second), f.hook))
	}
	if _, err := f.st.PublishEvents(ctx, batch); err != nil {
		t.Fatal(err)
	}
	want := target.Deliveries[0].ID
	ck := f.signIn()
	resp := f.get(ctx, "/console/events?id="+target.Event.ID, ck)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("event page: %d", resp.StatusCode)
	}
	if !strings.Contains(string(body), "Deliveries it caused (1)") || !strings.Contains(string(body), want) {
		t.Fatalf("the event's page does not list its delivery %s:\n%s", want, body)
	}
}

// post sends a console form with the session's CSRF token (read from
// the page at from) and returns the status and body.
func (f *streamFixture) post(ck *http.Cookie, from, path string, form url.Values) (int, string) {
	f.t.Helper()
	resp := f.postResp(ck, from, path, form)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// postFollow is post, then, when the form answers with a redirect, the
// page it leads to.
func (f *streamFixture) postFollow(ck *http.Cookie, from, path string, form url.Values) (int, string) {
	f.t.Helper()
	resp := f.postResp(ck, from, path, form)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	page := f.get(f.t.Context(), resp.Header.Get("Location"), ck)
	defer page.Body.Close()
	body, _ := io.ReadAll(page.Body)
	return page.StatusCode, string(body)
}

// postResp is post's response, its body unread (the caller closes it).
func (f *streamFixture) postResp(ck *http.Cookie, from, path string, form url.Values) *http.Response {
	f.t.Helper()
	resp := f.get(f.t.Context(), from, ck)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		f.t.Fatalf("no CSRF token on %s", from)
	}
	form.Set("csrf", string(m[1]))
	req, _ := http.NewRequest("POST", f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.srv.URL)
	req.AddCookie(ck)
	resp, err := client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

// TestCreateWebhookFormKeptOnError (issue 16): a new-webhook form the API
// refuses comes back with what was typed and checked and the reason, and
// the browser is sent to the form (#new), not to the top of a long list —
// it once came back empty, the reason out of sight below the table.
func TestCreateWebhookFormKeptOnError(t *testing.T) {
	f := newStreamFixture(t, nil)
	ck := f.signIn()
	status, body := f.post(ck, "/console/webhooks", "/console/webhooks", url.Values{
		"name": {"billing <prod>"}, "uri": {"ftp://example.com/hook"}, "events": {"batch.failed", "video.generated"}})
	if status != http.StatusBadRequest || !strings.Contains(body, `role="alert"`) {
		t.Fatalf("refused create: %d, want 400 with the reason", status)
	}
	for _, want := range []string{
		`action="/console/webhooks#new"`,
		`value="billing &lt;prod&gt;"`,
		`value="ftp://example.com/hook"`,
		`value="batch.failed" checked`,
		`value="video.generated" checked`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the refused form does not hold %s", want)
		}
	}
	if strings.Contains(body, `value="batch.succeeded" checked`) {
		t.Error("an event type that was not chosen is checked")
	}
}

// TestRotateSaysUntilWhenOldSecretWorks (issue 16): after a rotation that
// keeps the previous secret, the console says until when it stays valid —
// the server's own expiry — instead of "for 24 hours", which is wrong
// under serve --time-scale (there it expires seconds later).
func TestRotateSaysUntilWhenOldSecretWorks(t *testing.T) {
	f := newServeFixture(t, func(d *api.Deps) { d.TimeScale = 3600 }, nil)
	ck := f.signIn()
	before := time.Now().UTC()
	status, body := f.postFollow(ck, "/console/webhooks/"+f.hook.ID, "/console/webhooks/"+f.hook.ID+"/rotate",
		url.Values{"revocation": {"revoke_previous_secrets_after_h24"}})
	if status != http.StatusOK || !strings.Contains(body, "whsec_") {
		t.Fatalf("rotate: %d", status)
	}
	if strings.Contains(body, "24 hours") {
		t.Error("the rotation note says 24 hours under --time-scale 3600")
	}
	m := regexp.MustCompile(`valid until (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the rotation note does not say until when the previous secret stays valid")
	}
	until, err := time.Parse("2006-01-02 15:04:05", m[1])
	if err != nil || until.Before(before.Add(-time.Second)) || until.After(before.Add(time.Minute)) {
		t.Errorf("the previous secret is said to stay valid until %s, want about %s (24 h / 3600)", m[1], before.Add(24*time.Second))
	}
}

// TestEventsPageListsEvents (issue 16): the Events page finds events by
// type and hour — each with its delivery count, linking to its page —
// also an event that reached no webhook (nobody subscribed: the first
// answer to "did you send my webhook?"). It listed deliveries, so such an
// event could be found only by its id, and an event's id was nowhere in
// the list.
func TestEventsPageListsEvents(t *testing.T) {
	f := newStreamFixture(t, nil)
	ctx := t.Context()
	now := time.Now().UTC()
	lonely := storetest.NewEvent(f.hook.ProjectID, core.EventBatchExpired, now.Add(-2*time.Hour))
	old := storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, now.Add(-3*time.Hour), f.hook)
	recent := storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, now, f.hook)
	if _, err := f.st.PublishEvents(ctx, []core.NewEvent{lonely, old, recent}); err != nil {
		t.Fatal(err)
	}
	ck := f.signIn()
	page := func(path string) string { return f.page(t, path, ck) }
	link := func(ev core.NewEvent) string { return `href="/console/events?id=` + ev.Event.ID + `"` }
	all := page("/console/events")
	for _, ev := range []core.NewEvent{lonely, old, recent} {
		if !strings.Contains(all, link(ev)) || !strings.Contains(all, ev.Event.ID) {
			t.Errorf("the unfiltered list lacks event %s (%s)", ev.Event.ID, ev.Event.Type)
		}
	}
	if byType := page("/console/events?type=batch.expired"); !strings.Contains(byType, link(lonely)) || strings.Contains(byType, link(recent)) {
		t.Errorf("type=batch.expired does not list exactly the event that reached no webhook")
	}
	hour := now.Add(-150 * time.Minute).Format("2006-01-02T15:04") // lonely's hour, not old's nor recent's
	if byHour := page("/console/events?since=" + url.QueryEscape(hour)); !strings.Contains(byHour, link(lonely)) ||
		strings.Contains(byHour, link(old)) || strings.Contains(byHour, link(recent)) {
		t.Errorf("since=%s does not list exactly the events of that hour", hour)
	}
	// Older pages by keyset, keeping the filter.
	var many []core.NewEvent
	for i := range 55 {
		many = append(many, storetest.NewEvent(f.hook.ProjectID, core.EventBatchCancelled, now.Add(-time.Duration(i)*time.Second)))
	}
	if _, err := f.st.PublishEvents(ctx, many); err != nil {
		t.Fatal(err)
	}
	first := page("/console/events?type=batch.cancelled")
	m := regexp.MustCompile(`href="/console/events\?(before=[^"]+)">Older`).FindStringSubmatch(first)
	if n := strings.Count(first, `<a class="mono small" href="/console/events?id=`); n != 50 || m == nil {
		t.Fatalf("first page: %d events, older link %v; want 50 and a link", n, m != nil)
	}
	second := page("/console/events?" + html.UnescapeString(m[1]))
	if n := strings.Count(second, `<a class="mono small" href="/console/events?id=`); n != 5 || strings.Contains(second, ">Older") {
		t.Errorf("second page: %d events, want the last 5 and no older link", n)
	}
}

// TestEventSearchMissKeepsTheList (issue 16): a search for an id the
// project has no event with says so and still lists the project's events
// — the page showed "No events yet" under the message, as if the project
// had none, whether the id was mistyped, another project's or malformed.
func TestEventSearchMissKeepsTheList(t *testing.T) {
	f := newStreamFixture(t, nil)
	ev := storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, time.Now().UTC(), f.hook)
	if _, err := f.st.PublishEvents(t.Context(), []core.NewEvent{ev}); err != nil {
		t.Fatal(err)
	}
	ck := f.signIn()
	for _, id := range []string{"01m97v8qczxvamv00g8md0baxh", "not an id"} {
		page := f.page(t, "/console/events?id="+url.QueryEscape(id), ck)
		if !strings.Contains(page, "No event with id "+html.EscapeString(id)+" in this project.") {
			t.Errorf("search %q: no not-found message", id)
		}
		if strings.Contains(page, "No events yet") || !strings.Contains(page, `href="/console/events?id=`+ev.Event.ID+`"`) {
			t.Errorf("search %q: the page does not list the project's event %s below the message", id, ev.Event.ID)
		}
	}
}

// TestDeliveriesOlderLinkKeepsFilters (issue 16): the webhook page's
// "Older →" link keeps the status, type and time filters — the template
// escaped the filter's query as one value ("status%3dfailed%26type…"), so
// the older page of a filtered list was unfiltered.
func TestDeliveriesOlderLinkKeepsFilters(t *testing.T) {
	f := newStreamFixture(t, nil)
	ctx := t.Context()
	now := time.Now().UTC()
	var evs []core.NewEvent
	for i := range 60 {
		typ := core.EventBatchFailed
		if i%2 == 1 {
			typ = core.EventBatchSucceeded
		}
		evs = append(evs, storetest.NewEvent(f.hook.ProjectID, typ, now.Add(-time.Duration(i)*time.Second), f.hook))
	}
	for i := range 25 { // 55 batch.failed in all
		evs = append(evs, storetest.NewEvent(f.hook.ProjectID, core.EventBatchFailed, now.Add(-time.Minute-time.Duration(i)*time.Second), f.hook))
	}
	if _, err := f.st.PublishEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	ck := f.signIn()
	page := func(path string) string { return f.page(t, path, ck) }
	first := page("/console/webhooks/" + f.hook.ID + "?type=batch.failed&status=pending")
	m := regexp.MustCompile(`href="(/console/webhooks/[^"]+)">Older`).FindStringSubmatch(first)
	if m == nil {
		t.Fatal("a full first page has no Older link")
	}
	older := html.UnescapeString(m[1])
	u, err := url.Parse(older)
	if err != nil || u.Query().Get("type") != "batch.failed" || u.Query().Get("status") != "pending" || u.Query().Get("before") == "" {
		t.Fatalf("the Older link %q does not keep the filters", older)
	}
	second := page(older)
	if n := strings.Count(second, "<tr data-id="); n != 5 || strings.Contains(second, "batch.succeeded</td>") {
		t.Errorf("the older page shows %d rows (batch.succeeded among them: %v), want the last 5 batch.failed",
			n, strings.Contains(second, "batch.succeeded</td>"))
	}
}

// TestDynamicDeliveryHeadersAsSent (issue 16): a dynamic delivery's page
// names the headers as the engine sends them — the JWT is the
// webhook-signature header's value (docs/api.md, "Delivery wire format")
// — not "in Authorization", where no receiver would find it.
func TestDynamicDeliveryHeadersAsSent(t *testing.T) {
	f := newStreamFixture(t, nil)
	ev := storetest.NewDynamicEvent(f.hook.ProjectID, time.Now().UTC(), "https://example.com/job")
	if _, err := f.st.PublishEvents(t.Context(), []core.NewEvent{ev}); err != nil {
		t.Fatal(err)
	}
	d := ev.Deliveries[0]
	if err := f.st.CompleteDeliveries(t.Context(), []core.Completion{{DeliveryID: d.ID, Owner: "test", Attempt: core.Attempt{DeliveryID: d.ID,
		Number: 1, Time: time.Now().UTC(), URI: d.URI, StatusCode: 200}, Status: core.DeliverySucceeded, Success: true}}); err != nil {
		t.Fatal(err)
	}
	ck := f.signIn()
	resp := f.get(t.Context(), "/console/deliveries/"+d.ID, ck)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("delivery page: %d", resp.StatusCode)
	}
	page := string(body)
	if strings.Contains(page, "Authorization") {
		t.Error("the page says the JWT is sent in Authorization; it is the webhook-signature header")
	}
	if !regexp.MustCompile(`webhook-signature</th><td class="mono">[^<]*JWT`).MatchString(page) {
		t.Error("the webhook-signature header is not described as the JWT")
	}
}

// TestLiveStreamSendsRowsChangedWhileThePageLoaded (issue 16): a delivery
// the page showed as pending whose attempt finished before the page's
// live stream opened (a test event sent from the page: the redirect
// renders it pending, the receiver answers a few milliseconds later) is
// sent again by the stream's first read. It was skipped as "already
// shown", and the row stayed pending until a reload.
func TestLiveStreamSendsRowsChangedWhileThePageLoaded(t *testing.T) {
	f := newStreamFixture(t, nil)
	f.publish()
	ctx := t.Context()
	ck := f.signIn()
	resp := f.get(ctx, "/console/webhooks/"+f.hook.ID, ck)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`data-after="([^"]*)" data-shown="([^"]*)"`).FindStringSubmatch(string(body))
	if m == nil || m[1] == "" {
		t.Fatalf("the deliveries table has no data-after/data-shown:\n%s", body)
	}
	after, shown := html.UnescapeString(m[1]), html.UnescapeString(m[2])
	// The attempt finishes after the page read its rows.
	if _, err := f.st.ClaimDeliveries(ctx, core.ClaimParams{Owner: "test", Now: time.Now().UTC(), Limit: 10, Lease: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := f.st.CompleteDeliveries(ctx, []core.Completion{{DeliveryID: after, Owner: "test", Attempt: core.Attempt{DeliveryID: after,
		Number: 1, Time: time.Now().UTC(), URI: f.hook.URI, StatusCode: 200}, Status: core.DeliverySucceeded, Success: true}}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second) // a deadline for the failure, not a wait
	defer cancel()
	resp = f.get(sctx, "/console/webhooks/"+f.hook.ID+"/stream?after="+url.QueryEscape(after)+"&shown="+url.QueryEscape(shown), ck)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "delivery":
			if strings.Contains(line, after) && strings.Contains(line, `"status":"succeeded"`) {
				return
			}
		}
	}
	t.Fatal("the stream never sent the row that changed while the page loaded")
}

// page answers GET path, signed in with ck, and fails the test unless it
// is 200.
func (f *streamFixture) page(t *testing.T, path string, ck *http.Cookie) string {
	t.Helper()
	resp := f.get(t.Context(), path, ck)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d", path, resp.StatusCode)
	}
	return string(body)
}

// TestRecoverTakesTheWholeRange (issue 16): the webhook page's recovery
// counts every failed delivery of the range in its dry run and re-queues
// them all — it called :recover once with the API's default limit, so
// past 1,000 the dry run said 1,000 and the recovery re-queued the first
// 1,000, its message silent about the rest.
func TestRecoverTakesTheWholeRange(t *testing.T) {
	f := newStreamFixture(t, nil)
	ctx := t.Context()
	at := time.Now().UTC().Add(-time.Minute)
	const n = 1005
	for range n / 201 {
		evs := make([]core.NewEvent, 201)
		for i := range evs {
			evs[i] = storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, at, f.hook)
		}
		if _, err := f.st.PublishEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	for failed := 0; failed < n; {
		now := time.Now().UTC()
		cs, err := f.st.ClaimDeliveries(ctx, core.ClaimParams{Owner: "test", Now: now, Limit: 500, Lease: time.Minute})
		if err != nil || len(cs) == 0 {
			t.Fatalf("claim: %d %v", len(cs), err)
		}
		comps := make([]core.Completion, len(cs))
		for i, c := range cs {
			comps[i] = core.Completion{DeliveryID: c.ID, Owner: "test", Status: core.DeliveryFailed,
				Attempt: core.Attempt{DeliveryID: c.ID, Number: 1, Time: now, URI: f.hook.URI, StatusCode: 500, Error: "http_status: HTTP 500"}}
		}
		if err := f.st.CompleteDeliveries(ctx, comps); err != nil {
			t.Fatal(err)
		}
		failed += len(cs)
	}
	ck := f.signIn()
	page := "/console/webhooks/" + f.hook.ID
	form := url.Values{"since": {at.Add(-time.Minute).Format("2006-01-02T15:04")}}
	st, body := f.post(ck, page, page+"/recover", form)
	if st != http.StatusOK || !strings.Contains(body, `<b id="recover-count">1005</b>`) {
		t.Fatalf("dry run: %d, want the count 1005:\n%s", st, regexp.MustCompile(`recover-count[^<]*<`).FindString(body))
	}
	form.Set("confirm", "yes")
	if st, _ := f.post(ck, page, page+"/recover", form); st != http.StatusSeeOther {
		t.Fatalf("recover: %d", st)
	}
	left, err := f.st.ListDeliveries(ctx, core.ListDeliveriesParams{ProjectID: f.hook.ProjectID, WebhookID: f.hook.ID, Status: core.DeliveryFailed, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d of %d failed deliveries were not re-queued", len(left), n)
	}
}

// TestFlashOnlyFromTheConsole: a page shows a change's outcome message
// only when the console wrote it for this session — any link could make
// a console page say anything (?done=…) in the console's own status line.
func TestFlashOnlyFromTheConsole(t *testing.T) {
	f := newStreamFixture(t, nil)
	ck := f.signIn()
	page := "/console/webhooks/" + f.hook.ID
	forged := f.page(t, page+"?done="+url.QueryEscape("Your API key leaked: rotate it at evil.example"), ck)
	if strings.Contains(forged, "evil.example") {
		t.Errorf("a ?done= message from a link is shown on the page")
	}
	// The console's own message, through the redirect it answers.
	resp := f.get(t.Context(), page, ck)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token on the webhook page")
	}
	req, _ := http.NewRequest("POST", f.srv.URL+page+"/ping", strings.NewReader(url.Values{"csrf": {string(m[1])}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.srv.URL)
	req.AddCookie(ck)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, page+"?") {
		t.Fatalf("ping: %d %q", resp.StatusCode, loc)
	}
	if got := f.page(t, loc, ck); !strings.Contains(got, "Ping sent") {
		t.Errorf("the console's own flash after a ping is not shown (%s)", loc)
	}
	// Another session's link does not carry over either.
	if got := f.page(t, loc, f.signIn()); strings.Contains(got, "Ping sent") {
		t.Errorf("a flash signed for one session is shown to another")
	}
}

// TestDeliveryPageExplainsConnectionFailures (issue 16: "error in words"):
// a delivery whose attempt could not reach the receiver says in words why
// and what to do, for each error the engine records without a status —
// DNS and TLS failures ("dns: no such host", "tls: certificate
// verification failed") were shown as the bare error, with no advice.
func TestDeliveryPageExplainsConnectionFailures(t *testing.T) {
	f := newStreamFixture(t, nil)
	for _, c := range []struct{ err, want string }{
		{"connection refused", "could not connect"},
		{"dns: no such host", "host name"},
		{"tls: certificate verification failed", "certificate"},
	} {
		ev := storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, time.Now().UTC(), f.hook)
		if _, err := f.st.PublishEvents(t.Context(), []core.NewEvent{ev}); err != nil {
			t.Fatal(err)
		}
		d := ev.Deliveries[0]
		f.attempt(d.ID, core.Attempt{Error: c.err}, core.DeliveryFailed, time.Time{})
		why := f.why(t, d.ID)
		if !strings.Contains(why, c.want) || !strings.Contains(why, "Check") {
			t.Errorf("%s: the page says %q, want it to explain %q and what to check", c.err, why, c.want)
		}
		if strings.Contains(why, "1 attempts") {
			t.Errorf("%s: the page says %q", c.err, why)
		}
	}
}

// TestDeliveryPageDueNow (issue 16): a pending delivery whose next attempt
// time has passed (the engine has not taken it yet: a backlog, every
// instance stopped) says it is due now. It said "Retrying 5m ago.", a
// retry in the past that never happened.
func TestDeliveryPageDueNow(t *testing.T) {
	f := newStreamFixture(t, nil)
	ev := storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, time.Now().UTC(), f.hook)
	if _, err := f.st.PublishEvents(t.Context(), []core.NewEvent{ev}); err != nil {
		t.Fatal(err)
	}
	d := ev.Deliveries[0]
	f.attempt(d.ID, core.Attempt{StatusCode: 500}, core.DeliveryPending, time.Now().UTC().Add(-5*time.Minute))
	why := f.why(t, d.ID)
	if strings.Contains(why, " ago.") || !strings.Contains(why, "due now") {
		t.Errorf("the page says %q, want it to say the retry is due now", why)
	}
	if !strings.Contains(why, "HTTP 500") {
		t.Errorf("the page says %q, without why the last attempt failed", why)
	}
}

// attempt claims the delivery and records one attempt with the status it
// leaves the delivery in (pending: retried at next).
func (f *streamFixture) attempt(id string, a core.Attempt, status core.DeliveryStatus, next time.Time) {
	f.t.Helper()
	ctx := f.t.Context()
	if _, err := f.st.ClaimDeliveries(ctx, core.ClaimParams{Owner: "test", Now: time.Now().UTC(), Limit: 100, Lease: time.Minute}); err != nil {
		f.t.Fatal(err)
	}
	a.DeliveryID, a.Number, a.Time, a.URI = id, 1, time.Now().UTC(), f.hook.URI
	if err := f.st.CompleteDeliveries(ctx, []core.Completion{{DeliveryID: id, Owner: "test", Attempt: a, Status: status, NextAttemptTime: next}}); err != nil {
		f.t.Fatal(err)
	}
}

// why is the delivery page's "What happened" line.
func (f *streamFixture) why(t *testing.T, id string) string {
	t.Helper()
	m := regexp.MustCompile(`<p id="why">([^<]*)</p>`).FindStringSubmatch(f.page(t, "/console/deliveries/"+id, f.signIn()))
	if m == nil {
		t.Fatalf("the page of delivery %s has no explanation", id)
	}
	return html.UnescapeString(m[1])
}

// TestProjectKeySeesItsProjectName (issue 16): a project key's pages name
// its project at the top right, as an admin key's project switch does —
// they showed the project's 36-character id.
func TestProjectKeySeesItsProjectName(t *testing.T) {
	f := newStreamFixture(t, nil)
	p, err := f.st.GetProject(t.Context(), f.hook.ProjectID)
	if err != nil {
		t.Fatal(err)
	}
	page := f.page(t, "/console/webhooks", f.signIn())
	want := `<span class="muted" title="project ` + p.ID + `">` + html.EscapeString(p.Name) + `</span>`
	if !strings.Contains(page, want) {
		t.Errorf("the page does not name the project (%s):\n%s", want, page[:min(len(page), 2000)])
	}
}
