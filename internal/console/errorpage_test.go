package console_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestErrorPagesLeadBack: an error page, titled by what became of the
// request (the console's own checks were "The API refused this"), links
// back to where the operator was — the webhook whose form was refused, the list a missing page
// belongs to — and a form sent after the session ended gets a page with
// the way to sign in again. The error page linked to the overview only
// (a mistyped delete confirmation left no way back to the webhook but
// the browser's), and a POST without a session answered one line of
// plain text.
func TestErrorPagesLeadBack(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	ck := f.signIn()
	hook := "/console/webhooks/" + f.hook.ID
	back := func(body string) string {
		t.Helper()
		i := strings.Index(body, `id="back"`)
		if i < 0 {
			return ""
		}
		j := strings.LastIndex(body[:i], `href="`)
		return body[j+len(`href="`) : strings.Index(body[j+len(`href="`):], `"`)+j+len(`href="`)]
	}
	status, body := f.post(ck, hook, hook+"/delete", url.Values{"confirm": {"not-the-id"}})
	if status != http.StatusBadRequest || back(body) != hook {
		t.Errorf("a mistyped delete confirmation: %d, back link %q, want 400 and %q", status, back(body), hook)
	}
	// The console's own check: the title blames no API.
	if !strings.Contains(body, "<h1>Not done</h1>") {
		t.Error("a mistyped delete confirmation's page is not titled Not done")
	}
	for path, want := range map[string]string{
		"/console/webhooks/nosuchwebhook": "/console/webhooks",
		"/console/events?since=yesterday": "/console/events",
		"/console/jobs/nosuchjob":         "/console/jobs",
		"/console/nosuchpage":             "/console/",
	} {
		resp := f.get(t.Context(), path, ck)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if path == "/console/events?since=yesterday" && !strings.Contains(string(b), "<h1>This page cannot be shown</h1>") {
			t.Errorf("GET %s: not titled This page cannot be shown", path)
		}
		if resp.StatusCode/100 != 4 || back(string(b)) != want {
			t.Errorf("GET %s: %d, back link %q, want a 4xx and %q", path, resp.StatusCode, back(string(b)), want)
		}
	}

	if err := f.st.RevokeAPIKey(t.Context(), f.keyID, time.Now()); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", f.srv.URL+hook+"/disable", strings.NewReader("csrf=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.srv.URL)
	req.AddCookie(ck)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "/console/signin?next=" + url.QueryEscape(hook)
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || back(string(b)) != want {
		t.Errorf("a form after the session ended: %d %s, back link %q, want a 401 page linking to %q",
			resp.StatusCode, resp.Header.Get("Content-Type"), back(string(b)), want)
	}
}

// TestWebhookEditKeptOnError: an edit the API refuses (or with no event
// type checked) shows the webhook page again, the form holding what was
// typed and the reason beside it and at the top, and changes nothing. It
// led to an error page, the typing lost. The edit form also renames the
// webhook now: the console could not change a webhook's name.
func TestWebhookEditKeptOnError(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	ck := f.signIn()
	hook := "/console/webhooks/" + f.hook.ID
	for _, tc := range []struct {
		name string
		form url.Values
		why  string
	}{
		{"a refused URL", url.Values{"name": {"renamed <x>"}, "uri": {"ftp://example.com/x"}, "events": {"video.generated"}}, "https"},
		{"no event type", url.Values{"name": {"renamed <x>"}, "uri": {"https://example.com/new"}}, "Choose at least one event type"},
	} {
		status, body := f.post(ck, hook, hook+"/edit", tc.form)
		if status != http.StatusBadRequest || !strings.Contains(body, `role="alert">Not saved:`) || !strings.Contains(body, tc.why) {
			t.Errorf("%s: %d, want 400 with the webhook page saying %q", tc.name, status, tc.why)
		}
		for _, want := range []string{`id="edit-name" name="name" value="renamed &lt;x&gt;"`, `value="` + tc.form.Get("uri") + `"`} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: the form does not hold %s", tc.name, want)
			}
		}
		if ev := tc.form.Get("events"); ev != "" && !strings.Contains(body, `value="`+ev+`" checked`) {
			t.Errorf("%s: %s is not checked again", tc.name, ev)
		}
		h, err := f.st.GetWebhook(t.Context(), f.hook.ProjectID, f.hook.ID)
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != f.hook.Name || h.URI != f.hook.URI {
			t.Errorf("%s: the webhook changed to %q %q", tc.name, h.Name, h.URI)
		}
	}
	status, _ := f.post(ck, hook, hook+"/edit", url.Values{"name": {"renamed"}, "uri": {"https://example.com/new"}, "events": {"batch.failed"}})
	h, err := f.st.GetWebhook(t.Context(), f.hook.ProjectID, f.hook.ID)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusSeeOther || h.Name != "renamed" || h.URI != "https://example.com/new" {
		t.Errorf("a good edit: %d, webhook %q %q, want 303 and renamed at the new URL", status, h.Name, h.URI)
	}
}

// TestCreateWebhookWithoutEvents: a new-webhook form with no event type
// checked says so in the form's words, not the API's field name.
func TestCreateWebhookWithoutEvents(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	status, body := f.post(f.signIn(), "/console/webhooks", "/console/webhooks", url.Values{"name": {"x"}, "uri": {"https://example.com/hook"}})
	if status != http.StatusBadRequest || !strings.Contains(body, "Choose at least one event type") || strings.Contains(body, "subscribed_events") {
		t.Errorf("create without events: %d, want 400 asking to choose an event type (not naming subscribed_events)", status)
	}
}

// TestWebhookFiltersAfterAForm: the deliveries filter of a webhook page
// that answered a form (a recovery's dry run, a refused edit: the address
// is then …/recover or …/edit) still filters the webhook's deliveries.
// The filter form had no action, so it sent GET …/recover?status=… and
// the operator got "There is no console page at this address".
func TestWebhookFiltersAfterAForm(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	ck := f.signIn()
	hook := "/console/webhooks/" + f.hook.ID
	_, body := f.post(ck, hook, hook+"/recover", url.Values{"since": {"2026-01-01T00:00"}})
	if !strings.Contains(body, `id="recover-confirm"`) {
		t.Fatal("no dry run on the page")
	}
	if !strings.Contains(body, `<form method="get" action="`+hook+`"`) {
		t.Error("the deliveries filter does not send to the webhook's page")
	}
}

// TestDisabledWebhookSaysSoAtTheTop: a disabled webhook's page says at the
// top what being disabled means (deliveries falling due are skipped) and
// offers Enable there; the flash after disabling says the same. The page
// showed only a grey "disabled" badge, Enable at the bottom of the page.
func TestDisabledWebhookSaysSoAtTheTop(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	ck := f.signIn()
	hook := "/console/webhooks/" + f.hook.ID
	if body := f.page(t, hook, ck); strings.Contains(body, `id="state-note"`) {
		t.Error("an enabled webhook's page has a state note")
	}
	resp := f.postResp(ck, hook, hook+"/disable", url.Values{})
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disable: %d", resp.StatusCode)
	}
	body := f.page(t, loc, ck)
	note, deliveries := strings.Index(body, `id="state-note"`), strings.Index(body, `id="deliveries"`)
	if note < 0 || note > deliveries {
		t.Fatal("a disabled webhook's page does not say so above its deliveries")
	}
	top := body[note:deliveries]
	for _, want := range []string{"skipped", `action="` + hook + `/enable"`, `href="#recover"`} {
		if !strings.Contains(top, want) {
			t.Errorf("the state note lacks %s", want)
		}
	}
	if !strings.Contains(body, `<p class="flash" role="status">Webhook disabled. Deliveries that fall due are skipped`) {
		t.Error("the flash does not say what disabling does")
	}
}
