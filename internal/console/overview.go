package console

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// window is one time window of the overview: its plots and totals.
type window struct {
	Label    string
	Totals   core.StatsCounts
	Rate     string
	P50, P99 string
	Events   plot
	Attempts plot
}

// plot is a bar chart rendered as inline SVG by the template: only numbers
// and fixed class names reach the markup.
type plot struct {
	W, H   int
	Bars   []bar
	Max    int64
	Ticks  []tick
	Legend []legend
	Empty  bool
}

type bar struct {
	X, W  float64
	Segs  []seg
	Title string
}

type seg struct {
	X, Y, W, H float64
	Cls        string
}

type tick struct {
	X     float64
	Label string
}

type legend struct {
	Cls, Label string
	N          int64
}

const plotW, plotH, plotTop = 600, 140, 8

// newWindow folds rollup rows into a window of n steps ending at end.
func newWindow(label string, rows []core.StatsRow, end time.Time, step time.Duration, n int, tickEvery int, tickFmt string) window {
	start := end.Add(-time.Duration(n) * step)
	byStep := make([]core.StatsCounts, n)
	var tot core.StatsCounts
	for _, r := range rows {
		i := int(r.Start.Sub(start) / step)
		if i < 0 || i >= n {
			continue
		}
		byStep[i].Add(r.StatsCounts)
		tot.Add(r.StatsCounts)
	}
	w := window{Label: label, Totals: tot, Rate: pct(tot.SuccessRate()), P50: "—", P99: "—"}
	if d, ok := tot.LatencyQuantile(0.5); ok {
		w.P50 = ms(d)
	}
	if d, ok := tot.LatencyQuantile(0.99); ok {
		w.P99 = ms(d)
	}
	stepLabel := func(i int) string { return start.Add(time.Duration(i) * step).UTC().Format(tickFmt) }
	w.Events = barPlot(n, func(i int) []segVal { return []segVal{{byStep[i].Events, "ev"}} },
		func(i int) string { return fmt.Sprintf("%s UTC: %d events", stepLabel(i), byStep[i].Events) }, tickEvery, stepLabel)
	w.Events.Legend = []legend{{"ev", "events accepted", tot.Events}}
	w.Attempts = barPlot(n, func(i int) []segVal {
		return []segVal{{byStep[i].Succeeded, "ok"}, {byStep[i].Retrying, "warn"}, {byStep[i].Failed, "bad"}}
	}, func(i int) string {
		c := byStep[i]
		return fmt.Sprintf("%s UTC: %d succeeded, %d failed and retrying, %d failed for good", stepLabel(i), c.Succeeded, c.Retrying, c.Failed)
	}, tickEvery, stepLabel)
	w.Attempts.Legend = []legend{{"ok", "succeeded", tot.Succeeded}, {"warn", "failed, retrying", tot.Retrying}, {"bad", "failed for good", tot.Failed}}
	return w
}

type segVal struct {
	N   int64
	Cls string
}

func barPlot(n int, vals func(int) []segVal, title func(int) string, tickEvery int, label func(int) string) plot {
	p := plot{W: plotW, H: plotH + 18}
	for i := range n {
		var sum int64
		for _, v := range vals(i) {
			sum += v.N
		}
		p.Max = max(p.Max, sum)
	}
	p.Empty = p.Max == 0
	scale := 1.0
	if p.Max > 0 {
		scale = float64(plotH-plotTop) / float64(p.Max)
	}
	slot := float64(plotW) / float64(n)
	for i := range n {
		b := bar{X: float64(i)*slot + slot*0.12, W: slot * 0.76, Title: title(i)}
		y := float64(plotH)
		for _, v := range vals(i) {
			if v.N == 0 {
				continue
			}
			h := max(float64(v.N)*scale, 1.5)
			y -= h
			b.Segs = append(b.Segs, seg{X: b.X, Y: y, W: b.W, H: h, Cls: v.Cls})
		}
		p.Bars = append(p.Bars, b)
		if i%tickEvery == 0 {
			p.Ticks = append(p.Ticks, tick{X: float64(i)*slot + slot*0.12, Label: label(i)})
		}
	}
	return p
}

type overviewView struct {
	Hour, Day   window
	Depth       *core.QueueDepth
	Failing     []*core.Webhook
	Disabled    []*core.Webhook
	WebhookN    int
	GeneratedAt time.Time
}

// overview is the landing page: activity of the last hour and day from the
// rollup (a few hundred rows at most), the backlog, and the webhooks that
// need a person.
func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	v, err := c.overviewData(r.Context(), s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, s, http.StatusOK, "overview", v)
}

func (c *Console) overviewData(ctx context.Context, s *session) (*overviewView, error) {
	now := c.d.Clock.Now().UTC()
	hourEnd := now.Truncate(core.StatsBucket).Add(core.StatsBucket)
	dayEnd := now.Truncate(time.Hour).Add(time.Hour)
	rows, err := c.d.Store.Stats(ctx, core.StatsParams{ProjectID: s.project, Since: dayEnd.Add(-24 * time.Hour), Until: dayEnd})
	if err != nil {
		return nil, err
	}
	v := &overviewView{GeneratedAt: now}
	v.Hour = newWindow("Last hour", rows, hourEnd, core.StatsBucket, 12, 3, "15:04")
	v.Day = newWindow("Last 24 hours", core.FoldStatsRows(rows, core.StatsParams{Step: time.Hour}), dayEnd, time.Hour, 24, 4, "15:04")
	if s.admin {
		d, err := c.d.Store.QueueDepth(ctx, now)
		if err != nil {
			return nil, err
		}
		v.Depth = &d
	}
	after := ""
	for {
		hooks, err := c.d.Store.ListWebhooks(ctx, core.ListWebhooksParams{ProjectID: s.project, AfterID: after, Limit: 500})
		if err != nil {
			return nil, err
		}
		for _, h := range hooks {
			switch {
			case h.State == core.WebhookDisabledDueToFailedDeliveries:
				v.Disabled = append(v.Disabled, h)
			case h.State == core.WebhookEnabled && h.ConsecutiveFailures > 0:
				v.Failing = append(v.Failing, h)
			}
		}
		v.WebhookN += len(hooks)
		if len(hooks) < 500 {
			return v, nil
		}
		after = hooks[len(hooks)-1].ID
	}
}
