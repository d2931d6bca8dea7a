package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// corsPage is a web app on another origin calling serve's API from the
// browser with a key, as an app built on the Gemini SDKs' browser builds
// does: it creates a webhook (a JSON body and the key header need a
// preflight), publishes an event (the publish fast path hands a browser's
// request to net/http) and lists the webhooks, then writes what it got, or
// the error the browser gave it, into #out.
const corsPage = `<!doctype html><title>app</title><pre id="out">running</pre><script>
const api = %q, key = %q, hook = %q;
const h = {"x-goog-api-key": key, "content-type": "application/json", "x-goog-api-client": "google-genai-sdk/1 gl-web"};
(async () => {
  try {
    const w = await (await fetch(api + "/v1beta/webhooks", {method: "POST", headers: h,
      body: JSON.stringify({uri: hook, subscribed_events: ["batch.succeeded"]})})).json();
    const e = await (await fetch(api + "/v1beta/events", {method: "POST", headers: h,
      body: JSON.stringify({type: "batch.succeeded", data: {id: "batches/web"}})})).json();
    const l = await (await fetch(api + "/v1beta/webhooks?page_size=5", {headers: {"x-goog-api-key": key}})).json();
    document.getElementById("out").textContent = "ok " + w.id + " " + e.delivery_count + " " + l.webhooks.length;
  } catch (err) {
    document.getElementById("out").textContent = "error " + err;
  }
})();
</script>`

// TestBrowserCallsTheAPIFromAnotherOrigin: a real Chromium on a page of
// another origin calls the API: by default (--cors-origins *) it works end
// to end, the delivery included; with --cors-origins naming another origin
// the browser refuses the page's first call and nothing is created.
func TestBrowserCallsTheAPIFromAnotherOrigin(t *testing.T) {
	t.Parallel()
	br := newBrowser(t)
	rcv := newReceiver(t, nil)

	open := func(s *serveProc) string {
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, corsPage, s.URL(), s.APIKey, rcv.URL("/web"))
		}))
		t.Cleanup(app.Close)
		br.run("open the app", chromedp.Navigate(app.URL))
		br.waitJS("the app's calls ended", `document.getElementById("out").textContent !== "running"`)
		return br.text("#out")
	}

	s := startServe(t)
	if out := open(s); !strings.HasPrefix(out, "ok ") || !strings.HasSuffix(out, " 1 1") {
		t.Fatalf("the app's calls with --cors-origins *: %q", out)
	}
	got := rcv.waitN(t, 1, 20*time.Second)
	if e := got.envelope(t); string(e.Data) != `{"id":"batches/web"}` {
		t.Fatalf("delivered %s", e.Data)
	}

	strict := startServe(t, withFlags("--cors-origins", "https://app.example.com"))
	if out := open(strict); !strings.HasPrefix(out, "error TypeError") {
		t.Fatalf("the app's calls from an origin --cors-origins does not name: %q", out)
	}
	var list struct {
		Webhooks []any `json:"webhooks"`
	}
	strict.client(t).call(t, "GET", "/v1beta/webhooks", nil, &list)
	if len(list.Webhooks) != 0 {
		t.Fatalf("a refused preflight created %d webhooks", len(list.Webhooks))
	}
}
