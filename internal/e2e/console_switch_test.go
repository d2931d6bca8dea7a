package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The project switcher changes project only when its Switch button is
// pressed. It submitted on every change of the select, and Chromium fires
// one for each arrow key on a closed select: a keyboard user moving
// through the list to the project they want was switched (and sent to the
// overview) at the first key (WCAG 2.2 SC 3.2.2, On Input).
func TestConsoleProjectSwitcherKeyboard(t *testing.T) {
	br := newBrowser(t)
	s := startServe(t)
	admin := s.client(t)
	second, _ := createProject(t, admin, "second")
	createProject(t, admin, "third")
	base := s.URL()
	br.signIn(base, s.APIKey)

	br.run("open events", chromedp.Navigate(base+"/console/events"), chromedp.WaitVisible(chromedp.ID("#project")), loaded)
	start := get(br, "project", chromedp.Value(chromedp.ID("project")))
	// form.submit() is recorded instead of run: a switch on change would
	// otherwise race the checks below with its navigation.
	get(br, "record submits", chromedp.Evaluate[bool](
		`HTMLFormElement.prototype.submit = function () { window.__submitted = true; }, true`))
	// The list's order is the projects' ids (random): from the last
	// option the arrow that moves is the up one.
	key := kb.ArrowDown
	if get(br, "on the last option", chromedp.Evaluate[bool](
		`(s => s.selectedIndex === s.options.length - 1)(document.getElementById("project"))`)) {
		key = kb.ArrowUp
	}
	br.run("arrow through the projects",
		chromedp.Focus(chromedp.ID("#project")),
		chromedp.KeyEvent(key),
		chromedp.KeyEvent(key))
	moved := get(br, "project after the keys", chromedp.Value(chromedp.ID("project")))
	if moved == start {
		t.Fatalf("the arrow keys left the select on %q: the test did not move it", start)
	}
	if get(br, "submitted", chromedp.Evaluate[bool](`window.__submitted === true`)) {
		t.Fatal("moving through the project list with the arrow keys submitted the switch")
	}

	// The button switches.
	br.run("choose and switch",
		chromedp.SetValue(chromedp.ID("#project"), second),
		chromedp.Click(chromedp.CSS(`form.switch button`)),
		chromedp.WaitVisible(chromedp.CSS(`main`)), loaded)
	br.waitText("main", "Last hour")
	if got := get(br, "project after switching", chromedp.Value(chromedp.ID("project"))); got != second {
		t.Fatalf("after Switch the project is %q, want %q", got, second)
	}
}
