package console_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/longhook/longhook/internal/store/storetest"
)

// TestSignInPageSaysWhy: signing out, a session that ended, and revoking
// the key one is signed in with each land on the sign-in page with a
// sentence saying so; Admin marks that key and its Revoke asks
// differently. They landed on a bare sign-in form, so revoking one's own
// key looked like a crash. The notices are fixed texts: ?bye= of any
// other value says nothing.
func TestSignInPageSaysWhy(t *testing.T) {
	t.Parallel()
	f := newStreamFixture(t, nil)
	follow := func(resp *http.Response) string {
		t.Helper()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/signin") {
			t.Fatalf("answer %d to %q, want 303 to the sign-in page", resp.StatusCode, loc)
		}
		page, err := client.Get(f.srv.URL + loc)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(page.Body)
		page.Body.Close()
		return string(b)
	}
	notice := func(body string) string {
		i := strings.Index(body, `id="notice">`)
		if i < 0 {
			return ""
		}
		body = body[i+len(`id="notice">`):]
		return body[:strings.Index(body, "<")]
	}
	// Sign out.
	ck := f.signIn()
	if got := notice(follow(f.postResp(ck, "/console/webhooks", "/console/signout", url.Values{}))); !strings.Contains(got, "signed out") {
		t.Errorf("after signing out the sign-in page says %q", got)
	}
	// The session is gone: a page asks to sign in again, saying why.
	resp := f.get(t.Context(), "/console/webhooks", ck)
	resp.Body.Close()
	if got := notice(follow(resp)); !strings.Contains(got, "session ended") {
		t.Errorf("a page after the session ended: the sign-in page says %q", got)
	}

	// Revoke one's own key from Admin.
	admin, raw := storetest.NewAPIKey(f.hook.ProjectID)
	admin.Admin = true
	if err := f.st.CreateAPIKey(t.Context(), admin); err != nil {
		t.Fatal(err)
	}
	as := *f
	as.key = raw
	ck = as.signIn()
	page := f.page(t, "/console/admin", ck)
	if !strings.Contains(page, `<span class="badge warn">you</span>`) || !strings.Contains(page, "Revoke the key you are signed in with?") {
		t.Error("Admin does not mark the key this session signed in with")
	}
	if got := notice(follow(f.postResp(ck, "/console/admin", "/console/admin/revoke", url.Values{"key": {admin.ID}}))); !strings.Contains(got, "revoked the API key you were signed in with") {
		t.Errorf("after revoking one's own key the sign-in page says %q", got)
	}

	for _, q := range []string{"", "?bye=Call+555", "?bye=__proto__"} {
		resp, err := client.Get(f.srv.URL + "/console/signin" + q)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := notice(string(b)); got != "" {
			t.Errorf("/console/signin%s says %q, want nothing", q, got)
		}
	}
}
