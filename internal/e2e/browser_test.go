package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is a headless Chromium driven by chromedp, with a fresh profile.
type browser struct {
	t   testing.TB
	ctx context.Context
}

// chromiumPath finds Debian's chromium (or reports why the test skips).
func chromiumPath(t testing.TB) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (apt-get install chromium; .ci/run does)")
	return ""
}

// newBrowser starts Chromium; it is closed (and waited for) when the test
// ends.
func newBrowser(t testing.TB) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	return &browser{t: t, ctx: ctx}
}

// run runs chromedp actions with a deadline, ending the test on failure.
func (b *browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fatal(what, err)
	}
}

// fatal ends the test with err and where the browser was.
func (b *browser) fatal(what string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
	b.t.Fatalf("%s: %v\nat %s\n%s", what, err, loc, tail(html, 3000))
}

// get runs one action that returns a value.
func get[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.fatal(what, err)
	}
	return v
}

// text returns the text of the first element matching the CSS selector.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return get(b, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// value returns the value of the input with this id.
func (b *browser) value(id string) string {
	b.t.Helper()
	return get(b, "read #"+id, chromedp.Value(chromedp.ID(id)))
}

// html returns the page's HTML.
func (b *browser) html() string {
	b.t.Helper()
	return get(b, "read page", chromedp.OuterHTML(chromedp.CSS("html")))
}

// A page shows its elements while it is still loading, and once it is
// parsed Chromium sends chromedp its DOM afresh (DOM.documentUpdated):
// the node ids a query took before are void, and an action on them fails
// with "No node with given id found". Under load TestConsole failed so,
// reading the overview's h1 right after "Last hour" showed. So a wait for
// a page that a click or a form opens ends only once the page has
// loaded: waitText and waitJS check document.readyState, and a run of
// steps that submits a form ends with loaded after its WaitVisible (which
// tells the new page from the old).

// loaded is the step that waits until the current page has loaded.
var loaded = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	_, err := chromedp.Poll[bool](`document.readyState === "complete"`)(ctx, t)
	return err
})

// waitText waits, without reloading, until sel's text contains want and
// the page has loaded.
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	b.waitJS(fmt.Sprintf("%q in %s", want, sel),
		fmt.Sprintf(`!!document.querySelector(%q) && document.querySelector(%q).textContent.includes(%q)`, sel, sel, want))
}

// waitJS waits, without reloading, until the JavaScript expression expr
// is true on a page that has loaded. It tolerates a navigation in
// progress.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	// "" once it holds, else where the page is (for the failure message).
	expr = `document.readyState === "complete" && (` + expr + `) ? "" : location.href + " " + document.readyState`
	pollUntil(b.t, 60*time.Second, 25*time.Millisecond, what, func() (bool, string) {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		at, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			return false, err.Error()
		}
		return at == "", at
	})
}

// reloadUntil loads url until sel's text contains want.
func (b *browser) reloadUntil(url, sel, want string) {
	b.t.Helper()
	pollUntil(b.t, 60*time.Second, 100*time.Millisecond, fmt.Sprintf("%q in %s of %s", want, sel, url), func() (bool, string) {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
			return false, err.Error()
		}
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(s, want), s
	})
}

// shot saves full-page screenshots of the current page at 1280 px and at
// 390 px wide under docs/console/, when LONGHOOK_SCREENSHOTS=1 (so ordinary
// runs leave the tree alone).
func (b *browser) shot(name string) {
	b.t.Helper()
	if os.Getenv("LONGHOOK_SCREENSHOTS") != "1" {
		return
	}
	dir := filepath.Join("..", "..", "docs", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	for _, w := range []int64{1280, 390} {
		var opts []chromedp.EmulateViewportOption
		if w < 600 {
			opts = append(opts, chromedp.EmulateMobile) // overlay scrollbars, as on a phone
		}
		b.run("resize to "+fmt.Sprint(w), chromedp.EmulateViewport(w, 800, opts...))
		get(b, "layout at "+fmt.Sprint(w), chromedp.Poll[bool](fmt.Sprintf(`document.documentElement.clientWidth <= %d`, w)))
		buf := get(b, "screenshot "+name, chromedp.FullScreenshot(100))
		suffix := ""
		if w < 600 {
			suffix = "-narrow"
		}
		if err := os.WriteFile(filepath.Join(dir, name+suffix+".png"), buf, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	b.run("restore size", chromedp.ResetViewport())
}

// signIn signs in with key and lands on the overview.
func (b *browser) signIn(base, key string) {
	b.t.Helper()
	b.run("sign in",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.ID("#key")),
		chromedp.SendKeys(chromedp.ID("#key"), key),
		chromedp.Click(chromedp.ID("#signin")))
	b.waitText("main", "Last hour") // the overview
}

// acceptConfirms makes window.confirm answer yes on this page.
func (b *browser) acceptConfirms() {
	b.t.Helper()
	get(b, "accept confirms", chromedp.Evaluate[bool](`window.confirm = function () { return true; }, true`))
}

// consoleHTTP is a plain HTTP client for the checks a browser cannot make
// (headers, forged requests).
func consoleHTTP(t testing.TB) *http.Client {
	c := newHTTPClient(t, 10*time.Second)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}
