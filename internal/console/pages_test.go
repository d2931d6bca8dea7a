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

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestTimesSayUTC: every time a page shows says it is UTC — in its
// sentence, or, in a table, by its cell (class utc: on a phone the table
// becomes one block per row, its header with "(UTC)" hidden, and the CSS
// adds " UTC" to the cell). The overview's "failing since", a secret's
// "until", a key's "revoked" and the narrow layout's table cells showed
// bare times, which a reader in another zone takes for local ones.
func TestTimesSayUTC(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	ctx := t.Context()
	admin, raw := storetest.NewAPIKey(f.hook.ProjectID)
	admin.Admin = true
	if err := f.st.CreateAPIKey(ctx, admin); err != nil {
		t.Fatal(err)
	}
	gone, _ := storetest.NewAPIKey(f.hook.ProjectID)
	if err := f.st.CreateAPIKey(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if err := f.st.RevokeAPIKey(ctx, gone.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	ev := storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, time.Now().UTC(), f.hook)
	if _, err := f.st.PublishEvents(ctx, []core.NewEvent{ev}); err != nil {
		t.Fatal(err)
	}
	// A failed attempt that starts the webhook's failure run.
	if _, err := f.st.ClaimDeliveries(ctx, core.ClaimParams{Owner: "test", Now: time.Now().UTC(), Limit: 100, Lease: time.Minute}); err != nil {
		t.Fatal(err)
	}
	d := ev.Deliveries[0]
	if err := f.st.CompleteDeliveries(ctx, []core.Completion{{DeliveryID: d.ID, Owner: "test", WebhookID: f.hook.ID, Status: core.DeliveryPending,
		Attempt:         core.Attempt{DeliveryID: d.ID, Number: 1, Time: time.Now().UTC(), URI: f.hook.URI, StatusCode: 500},
		NextAttemptTime: time.Now().UTC().Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	as := *f
	as.key = raw
	ck := as.signIn()
	hook := "/console/webhooks/" + f.hook.ID
	if status, _ := f.postFollow(ck, hook, hook+"/rotate", url.Values{"revocation": {"revoke_previous_secrets_after_h24"}}); status != http.StatusOK {
		t.Fatalf("rotate: %d", status)
	}

	stamp := regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)
	tdOpen := regexp.MustCompile(`<td[^>]*>`)
	for _, path := range []string{"/console/", hook, "/console/events", "/console/events?id=" + ev.Event.ID, "/console/admin"} {
		body := f.page(t, path, ck)
		if path == "/console/" && !strings.Contains(body, "failures in a row since") {
			t.Errorf("the overview does not show the failing webhook")
		}
		n := 0
		for _, at := range stamp.FindAllStringIndex(body, -1) {
			n++
			if strings.HasPrefix(body[at[1]:], " UTC") {
				continue
			}
			before := body[:at[0]]
			open := tdOpen.FindAllStringIndex(before, -1)
			inCell := len(open) > 0 && !strings.Contains(before[open[len(open)-1][0]:], "</td>")
			if !inCell || !regexp.MustCompile(`class="[^"]*\butc\b`).MatchString(before[open[len(open)-1][0]:open[len(open)-1][1]]) {
				t.Errorf("%s: %q does not say UTC: …%s", path, body[at[0]:at[1]], body[max(0, at[0]-120):min(len(body), at[1]+20)])
			}
		}
		if n == 0 {
			t.Errorf("%s: no times on the page", path)
		}
	}
	css := f.page(t, "/console/static/console.css", ck)
	if !strings.Contains(css, `td.utc::after { content: " UTC"; }`) {
		t.Error("the narrow layout does not say UTC after a table's times")
	}
}

// TestLastResultInWords: a delivery whose last attempt got an HTTP error
// status shows "HTTP 500" in the webhook's table and its live rows, not
// the engine's error class ("http_status: HTTP 500").
func TestLastResultInWords(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	ev := storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, time.Now().UTC(), f.hook)
	if _, err := f.st.PublishEvents(t.Context(), []core.NewEvent{ev}); err != nil {
		t.Fatal(err)
	}
	f.attempt(ev.Deliveries[0].ID, core.Attempt{StatusCode: 500, Error: "http_status: HTTP 500"}, core.DeliveryPending, time.Now().UTC().Add(time.Hour))
	ck := f.signIn()
	body := f.page(t, "/console/webhooks/"+f.hook.ID, ck)
	if !strings.Contains(body, `<span class="bad-text">HTTP 500</span>`) || strings.Contains(body, "http_status") {
		t.Error("the deliveries table does not show the last result as HTTP 500")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	resp := f.get(ctx, "/console/webhooks/"+f.hook.ID+"/stream", ck)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			if !strings.Contains(data, `"error":"HTTP 500"`) {
				t.Errorf("the live row is %s, want its error as HTTP 500", data)
			}
			return
		}
	}
	t.Fatal("the stream sent no row")
}

// TestEventPageNamesWebhooks: the deliveries an event caused name their
// webhooks, as every other page does; they showed "webhook <36-character
// id>" only.
func TestEventPageNamesWebhooks(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	ev := storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, time.Now().UTC(), f.hook)
	if _, err := f.st.PublishEvents(t.Context(), []core.NewEvent{ev}); err != nil {
		t.Fatal(err)
	}
	body := f.page(t, "/console/events?id="+ev.Event.ID, f.signIn())
	want := `<a href="/console/webhooks/` + f.hook.ID + `">` + html.EscapeString(f.hook.Name) + `</a>`
	if !strings.Contains(body, want) {
		t.Errorf("the event's delivery does not name its webhook (%s)", want)
	}
}

// TestOverviewGetsANewProjectStarted: the overview of a project with no
// webhook says what to do first (create one, send an event, watch), with
// a link to the form; once there is a webhook it does not. A new
// project's overview was empty charts only.
func TestOverviewGetsANewProjectStarted(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	ck := f.signIn()
	if body := f.page(t, "/console/", ck); strings.Contains(body, `id="start"`) {
		t.Error("the overview of a project with a webhook shows Get started")
	}
	if err := f.st.DeleteWebhook(t.Context(), f.hook.ProjectID, f.hook.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	body := f.page(t, "/console/", ck)
	if !strings.Contains(body, `id="start"`) || !strings.Contains(body, `href="/console/webhooks#new"`) {
		t.Error("the overview of a project without webhooks does not say how to start")
	}
}

// TestRedeliverToADisabledWebhook: the page of a delivery whose webhook
// is disabled says so and offers Enable (which comes back to the
// delivery) instead of a Redeliver button the API refuses; a redeliver
// sent anyway is refused in the console's words. Redeliver led to "The
// API refused this: webhook "…" is disabled: enable it (PATCH state:
// enabled), then redeliver".
func TestRedeliverToADisabledWebhook(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	ev := storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, time.Now().UTC(), f.hook)
	if _, err := f.st.PublishEvents(t.Context(), []core.NewEvent{ev}); err != nil {
		t.Fatal(err)
	}
	ck := f.signIn()
	hook, page := "/console/webhooks/"+f.hook.ID, "/console/deliveries/"+ev.Deliveries[0].ID
	if status, _ := f.post(ck, hook, hook+"/disable", url.Values{}); status != http.StatusSeeOther {
		t.Fatalf("disable: %d", status)
	}
	body := f.page(t, page, ck)
	if !strings.Contains(body, `id="hook-off"`) || !strings.Contains(body, `id="enable-hook"`) || strings.Contains(body, `id="redeliver"`) {
		t.Error("the delivery page of a disabled webhook does not offer to enable it instead of redelivering")
	}
	status, body := f.post(ck, page, page+"/redeliver", url.Values{})
	if status != http.StatusBadRequest || !strings.Contains(body, "is disabled, so nothing is sent to it") || strings.Contains(body, "PATCH") {
		t.Errorf("redeliver to a disabled webhook: %d, want 400 in the console's words", status)
	}
	resp := f.postResp(ck, page, hook+"/enable", url.Values{"return": {page}})
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, page+"?done=") {
		t.Errorf("enable from the delivery page: %d to %q, want back to the delivery", resp.StatusCode, loc)
	}
	resp = f.postResp(ck, hook, hook+"/enable", url.Values{"return": {"https://evil.example/"}})
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, hook+"?done=") {
		t.Errorf("enable with a foreign return: to %q, want the webhook's page", loc)
	}
	if body := f.page(t, page, ck); !strings.Contains(body, `id="redeliver"`) {
		t.Error("the delivery page of the enabled webhook does not offer Redeliver")
	}
}

// TestPagersLeadBackToTheFirstPage: past the first page of a list (the
// webhooks, the events, a webhook's deliveries, the jobs) the pager
// links back to the first, filters kept; only the browser's Back led
// there.
func TestPagersLeadBackToTheFirstPage(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	ctx := t.Context()
	for range 50 {
		if err := f.st.CreateWebhook(ctx, storetest.NewWebhook(f.hook.ProjectID)); err != nil {
			t.Fatal(err)
		}
	}
	var evs []core.NewEvent
	for range 51 {
		evs = append(evs, storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, time.Now().UTC(), f.hook))
	}
	if _, err := f.st.PublishEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	ck := f.signIn()
	next := regexp.MustCompile(`<a href="([^"]+)">(?:Next page|Older) →</a>`)
	first := regexp.MustCompile(`<a href="([^"]+)" class="first">`)
	for _, tc := range []struct{ page, first string }{
		{"/console/webhooks", "/console/webhooks"},
		{"/console/events?type=batch.succeeded", "/console/events?type=batch.succeeded"},
		{"/console/webhooks/" + f.hook.ID + "?status=pending", "/console/webhooks/" + f.hook.ID + "?status=pending"},
	} {
		body := f.page(t, tc.page, ck)
		if first.MatchString(body) {
			t.Errorf("%s: the first page links to the first page", tc.page)
		}
		m := next.FindStringSubmatch(body)
		if m == nil {
			t.Errorf("%s: no link to the next page", tc.page)
			continue
		}
		body = f.page(t, html.UnescapeString(m[1]), ck)
		if m := first.FindStringSubmatch(body); m == nil || html.UnescapeString(m[1]) != tc.first {
			t.Errorf("%s, page 2: link to the first page %v, want %q", tc.page, m, tc.first)
		}
	}
	if m := first.FindStringSubmatch(f.page(t, "/console/jobs?kind=batch&before="+f.hook.ID, ck)); m == nil || html.UnescapeString(m[1]) != "/console/jobs?kind=batch" {
		t.Errorf("jobs past the first page: link to the first page %v", m)
	}
}

// TestEnablingAnAutoDisabledWebhookKeepsWhenItFailed: enabling a webhook
// longhook disabled starts a fresh failure run, which forgets when the
// old one began — the time its banner said to recover from. The enable
// now lands on the page with the recovery form's start filled in with
// that time, and the flash says so.
func TestEnablingAnAutoDisabledWebhookKeepsWhenItFailed(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	ctx := t.Context()
	ev := storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, time.Now().UTC(), f.hook)
	if _, err := f.st.PublishEvents(ctx, []core.NewEvent{ev}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.ClaimDeliveries(ctx, core.ClaimParams{Owner: "test", Now: time.Now().UTC(), Limit: 100, Lease: time.Minute}); err != nil {
		t.Fatal(err)
	}
	d := ev.Deliveries[0]
	if err := f.st.CompleteDeliveries(ctx, []core.Completion{{DeliveryID: d.ID, Owner: "test", WebhookID: f.hook.ID, Status: core.DeliveryFailed, DisableWebhook: true,
		Attempt: core.Attempt{DeliveryID: d.ID, Number: 1, Time: time.Now().UTC(), URI: f.hook.URI, StatusCode: 410, Error: "http_status: HTTP 410"}}}); err != nil {
		t.Fatal(err)
	}
	h, err := f.st.GetWebhook(ctx, f.hook.ProjectID, f.hook.ID)
	if err != nil || h.State != core.WebhookDisabledDueToFailedDeliveries || h.FailingSince.IsZero() {
		t.Fatalf("the webhook is %v since %v (%v), want auto-disabled", h.State, h.FailingSince, err)
	}
	since := h.FailingSince.UTC().Format("2006-01-02T15:04")
	ck := f.signIn()
	hook := "/console/webhooks/" + f.hook.ID
	resp := f.postResp(ck, hook, hook+"/enable", url.Values{})
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "recover_since="+url.QueryEscape(since)) {
		t.Fatalf("enable: %d to %q, want the webhook's page with recover_since=%s", resp.StatusCode, loc, since)
	}
	body := f.page(t, loc, ck)
	if !strings.Contains(body, `id="recover-since" value="`+since+`"`) {
		t.Error("the recovery form's start is not filled in with when the webhook began failing")
	}
	if !strings.Contains(body, "count the deliveries since it began failing") {
		t.Error("the flash does not say what to do next")
	}
	if h, _ := f.st.GetWebhook(ctx, f.hook.ProjectID, f.hook.ID); h.State != core.WebhookEnabled {
		t.Errorf("the webhook is %v after enable", h.State)
	}
}

// TestDeliveryWithoutAttemptsSaysWhy: a delivery that ended without an
// attempt (cancelled: its webhook was deleted) does not say "No attempt
// yet", which promises one.
func TestDeliveryWithoutAttemptsSaysWhy(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	ev := storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, time.Now().UTC(), f.hook)
	if _, err := f.st.PublishEvents(t.Context(), []core.NewEvent{ev}); err != nil {
		t.Fatal(err)
	}
	ck := f.signIn()
	page := "/console/deliveries/" + ev.Deliveries[0].ID
	if body := f.page(t, page, ck); !strings.Contains(body, `id="no-attempt">No attempt yet.`) {
		t.Error("a pending delivery without attempts does not say No attempt yet")
	}
	if err := f.st.DeleteWebhook(t.Context(), f.hook.ProjectID, f.hook.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	body := f.page(t, page, ck)
	if strings.Contains(body, "No attempt yet") || !strings.Contains(body, "No attempt was made") {
		t.Error("a cancelled delivery without attempts promises one")
	}
}

// TestSecretPagesAreShownOnceAfterARedirect: creating a webhook and
// rotating its secret answer with a redirect to a page that shows the
// secret once; loading it again shows it no more. The forms answered
// with the secret's page directly, so a reload sent the form again: a
// second webhook, a second rotation.
func TestSecretPagesAreShownOnceAfterARedirect(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	ck := f.signIn()
	hook := "/console/webhooks/" + f.hook.ID
	for _, tc := range []struct {
		name, from, path string
		form             url.Values
	}{
		{"create", "/console/webhooks", "/console/webhooks", url.Values{"name": {"once"}, "uri": {"https://example.com/once"}, "events": {"batch.failed"}}},
		{"rotate", hook, hook + "/rotate", url.Values{"revocation": {"revoke_previous_secrets_immediately"}}},
	} {
		resp := f.postResp(ck, tc.from, tc.path, tc.form)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "/created?r=") {
			t.Errorf("%s: %d to %q, want a redirect to the secret's page", tc.name, resp.StatusCode, loc)
			continue
		}
		// A HEAD (a link checker, a browser's probe) leaves the secret
		// for the GET that shows it; it used the secret up.
		head, _ := http.NewRequestWithContext(t.Context(), http.MethodHead, f.srv.URL+loc, nil)
		head.AddCookie(ck)
		if hr, err := client.Do(head); err != nil {
			t.Fatal(err)
		} else {
			hr.Body.Close()
		}
		first := f.get(t.Context(), loc, ck)
		b, _ := io.ReadAll(first.Body)
		first.Body.Close()
		if first.StatusCode != http.StatusOK || !regexp.MustCompile(`id="secret" class="mono" readonly value="whsec_[^"]+"`).Match(b) {
			t.Errorf("%s: the secret's page: %d without the secret", tc.name, first.StatusCode)
		}
		again := f.get(t.Context(), loc, ck)
		b, _ = io.ReadAll(again.Body)
		again.Body.Close()
		if again.StatusCode != http.StatusGone || strings.Contains(string(b), "whsec_") {
			t.Errorf("%s: the secret's page loaded again: %d (secret shown: %v), want 410 without it", tc.name, again.StatusCode, strings.Contains(string(b), "whsec_"))
		}
	}
	hooks, err := f.st.ListWebhooks(t.Context(), core.ListWebhooksParams{ProjectID: f.hook.ProjectID, Limit: 10})
	if err != nil || len(hooks) != 2 {
		t.Errorf("%d webhooks (%v), want the fixture's and the one created", len(hooks), err)
	}
	// Another session cannot take a secret stashed for this one.
	resp := f.postResp(ck, hook, hook+"/rotate", url.Values{"revocation": {"revoke_previous_secrets_immediately"}})
	resp.Body.Close()
	other := f.get(t.Context(), resp.Header.Get("Location"), f.signIn())
	other.Body.Close()
	if other.StatusCode != http.StatusGone {
		t.Errorf("another session's load of the secret's page: %d, want 410", other.StatusCode)
	}
}

// TestNewAPIKeyShownOnceAfterARedirect: Admin's new-key and new-project
// forms redirect to the page that shows the key once; a reload shows it
// no more and creates nothing (it sent the form again: another key,
// another project).
func TestNewAPIKeyShownOnceAfterARedirect(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	admin, raw := storetest.NewAPIKey(f.hook.ProjectID)
	admin.Admin = true
	if err := f.st.CreateAPIKey(t.Context(), admin); err != nil {
		t.Fatal(err)
	}
	as := *f
	as.key = raw
	ck := as.signIn()
	shown := regexp.MustCompile(`id="newkey" class="mono" readonly value="lh_[^"]+"`)
	for _, tc := range []struct {
		name, path string
		form       url.Values
	}{
		{"new key", "/console/admin/keys", url.Values{"project": {f.hook.ProjectID}, "name": {"ci"}}},
		{"new project", "/console/admin/project", url.Values{"name": {"second"}}},
	} {
		resp := f.postResp(ck, "/console/admin", tc.path, tc.form)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/admin?r=") {
			t.Errorf("%s: %d to %q, want a redirect to Admin", tc.name, resp.StatusCode, loc)
			continue
		}
		if body := f.page(t, loc, ck); !shown.MatchString(body) {
			t.Errorf("%s: Admin does not show the new key", tc.name)
		}
		if body := f.page(t, loc, ck); shown.MatchString(body) {
			t.Errorf("%s: Admin loaded again shows the key again", tc.name)
		}
	}
	keys, err := f.st.ListAPIKeys(t.Context(), "")
	if err != nil || len(keys) != 4 { // the fixture's, the admin key, "ci", the new project's
		t.Errorf("%d API keys (%v), want 4", len(keys), err)
	}
}
