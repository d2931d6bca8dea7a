package console_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestErrorPagesLeadBack: an error page links back to where the operator
// was — the webhook whose form was refused, the list a missing page
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
	status, body = f.post(ck, hook, hook+"/edit", url.Values{"uri": {"ftp://example.com/x"}, "events": {"batch.failed"}})
	if status != http.StatusBadRequest || back(body) != hook {
		t.Errorf("a refused edit: %d, back link %q, want 400 and %q", status, back(body), hook)
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
