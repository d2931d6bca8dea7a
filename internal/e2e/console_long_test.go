package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleLongValuesFit (issue 16): long values without a break — a
// webhook URL with a long token in its query, a long name, a long event
// subject — wrap inside the page at 1280 px and at 390 px instead of
// widening it, so every column of the webhooks table (state, success,
// last delivery) stays in view. A long URL once pushed every column but
// the first out of the table and the webhook and event pages to 2,400 px.
func TestConsoleLongValuesFit(t *testing.T) {
	br := newBrowser(t)
	s := startServe(t)
	c := s.client(t)
	base := s.URL()
	long := strings.Repeat("x", 300)
	rcv := newReceiver(t, func(int, received) int { return http.StatusOK })
	var w webhookResource
	c.call(t, "POST", "/v1beta/webhooks", map[string]any{"name": "name-" + strings.Repeat("n", 120),
		"uri": rcv.URL("/" + long + "?token=" + long), "subscribed_events": []string{"batch.succeeded"}}, &w)
	ev := c.publish(t, map[string]any{"type": "batch.succeeded", "subject": "batches/" + long, "data": map[string]any{"id": "batches/" + long}})
	pollUntil(t, 60*time.Second, 50*time.Millisecond, "a delivery", func() (bool, string) {
		return len(listDeliveries(t, c, w.ID)) > 0, ""
	})
	d := listDeliveries(t, c, w.ID)[0]
	br.signIn(base, s.APIKey)
	for _, width := range []int64{1280, 390} {
		br.run("resize", chromedp.EmulateViewport(width, 800))
		for _, path := range []string{"/console/webhooks", "/console/webhooks/" + w.ID, "/console/deliveries/" + d.ID, "/console/events?id=" + ev.ID} {
			br.run("open "+path, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS("main")))
			if over := get(br, "page width", chromedp.Evaluate[float64](`document.documentElement.scrollWidth - window.innerWidth`)); over > 0 {
				t.Errorf("at %d px %s is %v px wider than the window", width, path, over)
			}
		}
		br.run("webhooks", chromedp.Navigate(base+"/console/webhooks"), chromedp.WaitVisible(chromedp.CSS("table")))
		// Every cell of the row is inside the table's visible box (the
		// table scrolls sideways inside its card when too wide).
		hidden := get(br, "cells in view", chromedp.Evaluate[int](`(() => {
			const box = document.querySelector(".scroll").getBoundingClientRect();
			return [...document.querySelectorAll("tbody tr:first-child td")].filter(td => {
				const r = td.getBoundingClientRect();
				return r.left >= box.right - 1 || r.right > box.right + 1;
			}).length;
		})()`))
		if hidden > 0 {
			t.Errorf("at %d px %d cells of the webhook's row are outside the table's view", width, hidden)
		}
	}
}
