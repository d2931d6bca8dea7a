package core

import (
	"context"
	"math"
	"sort"
	"time"
)

// StatsBucket is the width of one row of the activity rollup: the console
// plots the last hour in 12 of them and the last day in 288 folded to
// hours, so reading a day costs a few hundred rows per webhook however many
// deliveries it holds.
const StatsBucket = 5 * time.Minute

// LatencyBuckets is the size of the attempt latency histogram: bucket i
// counts latencies below 2^i ms (bucket 0: below 1 ms), the last one
// everything slower.
const LatencyBuckets = 17

// StatsCounts is one rollup row's counters.
type StatsCounts struct {
	Events    int64 // events accepted
	Succeeded int64 // attempts that succeeded
	Retrying  int64 // attempts that failed with a retry scheduled
	Failed    int64 // attempts that failed and ended their delivery
	Latency   [LatencyBuckets]int64
}

// Add adds o to c.
func (c *StatsCounts) Add(o StatsCounts) {
	c.Events += o.Events
	c.Succeeded += o.Succeeded
	c.Retrying += o.Retrying
	c.Failed += o.Failed
	for i := range c.Latency {
		c.Latency[i] += o.Latency[i]
	}
}

// Attempts is the number of attempts counted.
func (c StatsCounts) Attempts() int64 { return c.Succeeded + c.Retrying + c.Failed }

// SuccessRate is the share of attempts that succeeded, or -1 without any.
func (c StatsCounts) SuccessRate() float64 {
	if n := c.Attempts(); n > 0 {
		return float64(c.Succeeded) / float64(n)
	}
	return -1
}

// LatencyQuantile estimates the q-quantile (0 < q ≤ 1) of attempt latency
// from the histogram, interpolating geometrically inside the bucket; ok is
// false without any attempt.
func (c StatsCounts) LatencyQuantile(q float64) (time.Duration, bool) {
	var total int64
	for _, n := range c.Latency {
		total += n
	}
	if total == 0 {
		return 0, false
	}
	rank := q * float64(total)
	var seen float64
	for i, n := range c.Latency {
		if n == 0 || seen+float64(n) < rank {
			seen += float64(n)
			continue
		}
		lo, hi := 0.5, 1.0 // ms; bucket 0 is taken as [0.5, 1)
		if i > 0 {
			lo, hi = math.Ldexp(1, i-1), math.Ldexp(1, i)
		}
		f := (rank - seen) / float64(n)
		ms := lo * math.Pow(hi/lo, f)
		return time.Duration(ms * float64(time.Millisecond)), true
	}
	return time.Duration(math.Ldexp(1, LatencyBuckets-1)) * time.Millisecond, true
}

// LatencyBucket returns the histogram bucket of d.
func LatencyBucket(d time.Duration) int {
	ms := d.Milliseconds()
	i := 0
	for i < LatencyBuckets-1 && ms >= int64(1)<<i {
		i++
	}
	return i
}

// StatsTotal is the WebhookID of a project's total rows: every attempt is
// counted twice, under its webhook ("" for dynamic deliveries) and under
// StatsTotal, and events only under StatsTotal, so that the project's
// overview reads one row per bucket however many webhooks it has.
const StatsTotal = "*"

// StatsKey identifies a rollup row.
type StatsKey struct {
	ProjectID string
	Bucket    time.Time // start, a multiple of StatsBucket since the epoch
	WebhookID string
}

// StatsDelta is what one write adds to one rollup row.
type StatsDelta struct {
	StatsKey
	StatsCounts
}

// bucketOf truncates t to its rollup bucket.
func bucketOf(t time.Time) time.Time { return t.UTC().Truncate(StatsBucket) }

// FoldPublished returns the rollup deltas of accepting evs (the results of
// PublishEvents tell duplicates apart: they add nothing), in key order.
func FoldPublished(evs []NewEvent, res []PublishResult) []StatsDelta {
	m := map[StatsKey]*StatsDelta{}
	for i, ne := range evs {
		if i < len(res) && res[i].Duplicate {
			continue
		}
		k := StatsKey{ProjectID: ne.Event.ProjectID, Bucket: bucketOf(ne.Event.CreateTime), WebhookID: StatsTotal}
		deltaOf(m, k).Events++
	}
	return sortedDeltas(m)
}

// FoldCompleted returns the rollup deltas of recording cs, in key order.
// Completions without an attempt or a ProjectID add nothing.
func FoldCompleted(cs []Completion) []StatsDelta {
	m := map[StatsKey]*StatsDelta{}
	for _, c := range cs {
		if c.Attempt.Number == 0 || c.ProjectID == "" {
			continue
		}
		at := c.Attempt.Time
		for _, hook := range []string{c.WebhookID, StatsTotal} {
			d := deltaOf(m, StatsKey{ProjectID: c.ProjectID, Bucket: bucketOf(at), WebhookID: hook})
			switch {
			case c.Success:
				d.Succeeded++
			case c.Status == DeliveryPending:
				d.Retrying++
			default:
				d.Failed++
			}
			d.Latency[LatencyBucket(c.Attempt.Latency)]++
		}
	}
	return sortedDeltas(m)
}

func deltaOf(m map[StatsKey]*StatsDelta, k StatsKey) *StatsDelta {
	d := m[k]
	if d == nil {
		d = &StatsDelta{StatsKey: k}
		m[k] = d
	}
	return d
}

// sortedDeltas orders deltas by key so that concurrent writers upsert rows
// in one order (no deadlocks on PostgreSQL).
func sortedDeltas(m map[StatsKey]*StatsDelta) []StatsDelta {
	out := make([]StatsDelta, 0, len(m))
	for _, d := range m {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].StatsKey, out[j].StatsKey
		if a.ProjectID != b.ProjectID {
			return a.ProjectID < b.ProjectID
		}
		if !a.Bucket.Equal(b.Bucket) {
			return a.Bucket.Before(b.Bucket)
		}
		return a.WebhookID < b.WebhookID
	})
	return out
}

// StatsParams selects rollup rows.
type StatsParams struct {
	ProjectID string
	// Since and Until bound the buckets' start times as [Since, Until).
	Since, Until time.Time
	// Step folds buckets: rows are summed per Step-aligned start (a
	// multiple of StatsBucket; 0 means StatsBucket).
	Step time.Duration
	// WebhookID selects one webhook's rows ("" for dynamic deliveries
	// needs ByWebhook). Without it and without ByWebhook: the project's
	// totals (StatsTotal).
	WebhookID string
	// ByWebhook returns one row per webhook and step (totals excluded).
	ByWebhook bool
	// NoLatency leaves the latency histogram zero: summing its 17
	// columns is most of the read's cost, and a success rate needs none.
	NoLatency bool
}

// StatsHook is the webhook_id condition drivers apply for p: rows whose
// webhook_id equals hook, or, when all, every row except the totals.
func StatsHook(p StatsParams) (hook string, all bool) {
	switch {
	case p.WebhookID != "":
		return p.WebhookID, false
	case p.ByWebhook:
		return "", true
	}
	return StatsTotal, false
}

// StatsRow is the sum of the rollup rows of one step (and webhook).
type StatsRow struct {
	Start     time.Time
	WebhookID string
	StatsCounts
}

// StatsStore is the activity rollup: events accepted and attempt outcomes
// and latencies per project, webhook and StatsBucket, written in the same
// transactions as the events and attempts they count.
type StatsStore interface {
	// Stats returns the selected rows in start order (then webhook id);
	// steps without activity are absent.
	Stats(ctx context.Context, p StatsParams) ([]StatsRow, error)
}

// FoldStatsRows sums rows (in start order) into coarser steps, e.g. the
// console's 5-minute rows of a day into hours.
func FoldStatsRows(rows []StatsRow, p StatsParams) []StatsRow {
	step := p.Step
	if step <= 0 {
		step = StatsBucket
	}
	type key struct {
		start int64
		hook  string
	}
	idx := map[key]int{}
	var out []StatsRow
	for _, r := range rows {
		k := key{start: r.Start.UTC().Truncate(step).UnixMicro()}
		if p.ByWebhook {
			k.hook = r.WebhookID
		}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, StatsRow{Start: time.UnixMicro(k.start).UTC(), WebhookID: k.hook})
		}
		out[i].Add(r.StatsCounts)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].WebhookID < out[j].WebhookID
	})
	return out
}
