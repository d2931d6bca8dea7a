package cli

import (
	"fmt"
	"io"
	"strings"
)

// progress draws a one-line bar on a terminal and nothing elsewhere (a
// pipe, a file, CI logs).
type progress struct {
	w     io.Writer // nil: not a terminal
	label string
	total int
	last  int // last drawn percentage
}

func newProgress(w io.Writer, label string) *progress {
	p := &progress{label: label, last: -1}
	if isTerminal(w) {
		p.w = w
	}
	return p
}

func (p *progress) start(total int) {
	p.total = total
	p.set(0)
}

// set draws n of total, redrawing only when the percentage changes.
func (p *progress) set(n int) {
	if p == nil || p.w == nil || p.total <= 0 {
		return
	}
	pct := min(100, n*100/p.total)
	if pct == p.last {
		return
	}
	p.last = pct
	const width = 30
	fill := pct * width / 100
	fmt.Fprintf(p.w, "\r%s%s %3d%%  %d/%d %s", strings.Repeat("█", fill), strings.Repeat("░", width-fill), pct, n, p.total, p.label)
}

// done ends the bar's line.
func (p *progress) done() {
	if p != nil && p.w != nil && p.last >= 0 {
		fmt.Fprintln(p.w)
	}
}
