package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestProgress: the bar redraws only when its percentage moves, ends its
// line once, and a writer that is not a terminal gets nothing at all.
func TestProgress(t *testing.T) {
	var tty bytes.Buffer
	p := &progress{w: &tty, label: "deliveries received", last: -1}
	p.start(200)
	for n := 0; n <= 200; n++ {
		p.set(n)
	}
	p.set(250) // more than expected (a retry counted twice) stays at 100 %
	p.done()
	out := tty.String()
	if draws := strings.Count(out, "\r"); draws != 101 {
		t.Errorf("%d redraws, want 101 (one per percent)", draws)
	}
	if !strings.HasSuffix(out, "100%  200/200 deliveries received\n") {
		t.Errorf("last frame %q", out[strings.LastIndex(out, "\r"):])
	}

	var pipe bytes.Buffer
	q := newProgress(&pipe, "x")
	q.start(10)
	q.set(5)
	q.done()
	if pipe.Len() != 0 {
		t.Errorf("drew %q on a writer that is not a terminal", pipe.String())
	}
	var nilBar *progress
	nilBar.set(1) // commands without a bar pass nil
	nilBar.done()
}
