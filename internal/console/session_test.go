package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
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
