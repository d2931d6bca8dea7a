package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Parameters of TestServeThroughGateway.
const (
	gwEvents    = 300 // events published per source
	gwBatch     = 100 // events per events:batchPublish
	gwRedeliver = 25  // deliveries per source re-sent with :redeliver
	// gwQuiet is how long every sink count must stay at gwEvents before
	// the sinks are read: a late re-forward would show up within it.
	gwQuiet = time.Second
	// gwNATSDuplicates is the JetStream duplicate window of the test
	// streams. It is far shorter than the time between a first delivery
	// and its redelivery, so JetStream's own Nats-Msg-Id dedupe cannot hide
	// a second forward by the gateway (the Redis sinks run with no_dedupe
	// for the same reason; the HTTP target never dedupes).
	gwNATSDuplicates = 100 * time.Millisecond
)

// gwSource is one gateway source and the three sinks it forwards to.
type gwSource struct {
	name        string
	rcv         *receiver        // HTTP sink target
	redisStream string           // Redis sink stream
	nats        jetstream.Stream // stream capturing natsSubject
	natsSubject string
}

// gwDelivery is GET /v1beta/deliveries/{id} with the attempts' answers.
type gwDelivery struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	AttemptCount int    `json:"attempt_count"`
	Attempts     []struct {
		Number       int    `json:"number"`
		StatusCode   int    `json:"status_code"`
		Error        string `json:"error"`
		ResponseBody string `json:"response_body"`
	} `json:"attempts"`
}

// TestServeThroughGateway (issue 6, "done when" #1): `longhook serve
// --dev` delivers a static webhook (HMAC) and dynamic events (JWT, checked
// against serve's JWKS) to `longhook gateway`, whose two sources forward
// each to an HTTP target, a Redis stream and a JetStream subject. serve
// then re-sends deliveries that already succeeded — :redeliver on some of
// each kind, and :recover with only_failed=false over the static webhook's
// whole history. The gateway answers every re-send 200 with
// "duplicate":true and forwards nothing again: each sink ends with exactly
// one entry per webhook-id, gwEvents per source.
func TestServeThroughGateway(t *testing.T) {
	t.Parallel()
	b := testBrokers(t)
	start := time.Now()
	s := startServe(t)
	c := s.client(t)
	hc := newHTTPClient(t, 10*time.Second)

	var sources []*gwSource
	for _, name := range []string{"static", "dynamic"} {
		st, subject := b.natsStream(t, name, gwNATSDuplicates)
		sources = append(sources, &gwSource{
			name: name, rcv: newReceiver(t, nil),
			redisStream: b.redisStream(t, name), nats: st, natsSubject: subject,
		})
	}
	static, dynamic := sources[0], sources[1]

	// The webhook's secret goes into the gateway config, and the gateway's
	// URL into the webhook: create it first, point it at the gateway later.
	hook := c.createWebhook(t, "http://127.0.0.1:9/not-yet", "batch.succeeded")
	gw := startGateway(t, func(base string) string {
		var y strings.Builder
		y.WriteString("shutdown_timeout: 2s\nsources:\n")
		fmt.Fprintf(&y, "  - name: static\n    verify:\n      hmac_secrets: [%q]\n", hook.NewSigningSecret)
		writeSinks(&y, b, static)
		fmt.Fprintf(&y, "  - name: dynamic\n    verify:\n      jwks: {url: %q, issuer: %q, audience: %q}\n",
			s.URL()+"/.well-known/jwks.json", s.URL(), base+"/hooks/dynamic")
		writeSinks(&y, b, dynamic)
		return y.String()
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log (end):\n%s", tail(gw.stderr.String(), 40))
		}
	})
	c.call(t, "PATCH", "/v1beta/webhooks/"+hook.ID, map[string]any{"uri": gw.URL + "/hooks/static"}, nil)
	dynamicURI := gw.URL + "/hooks/dynamic"

	// Publish gwEvents static and gwEvents dynamic events.
	since := time.Now().Add(-time.Second)
	for i := 0; i < gwEvents; i += gwBatch {
		var st, dyn []map[string]any
		for j := i; j < min(i+gwBatch, gwEvents); j++ {
			st = append(st, map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": dataID(static, j)}})
			dyn = append(dyn, map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": dataID(dynamic, j)},
				"webhook_config": map[string]any{"uris": []string{dynamicURI}}})
		}
		publishBatch(t, c, st)
		publishBatch(t, c, dyn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pollUntil(t, 30*time.Second, 50*time.Millisecond, "every event at every sink", func() (bool, string) {
		n, err := sinkCounts(ctx, b, sources)
		if err != nil {
			return false, err.Error()
		}
		return !slices.ContainsFunc(slices.Collect(maps.Values(n)), func(k int) bool { return k < gwEvents }), fmt.Sprint(n)
	})
	firstPass := time.Since(start)

	// Every first attempt has succeeded before anything is re-sent.
	var staticIDs []string
	pollUntil(t, 20*time.Second, 50*time.Millisecond, "static deliveries succeeded", func() (bool, string) {
		ds := listDeliveries(t, c, hook.ID)
		staticIDs = staticIDs[:0]
		for _, d := range ds {
			if d.Status != "succeeded" || d.AttemptCount != 1 {
				return false, fmt.Sprintf("%s: %s after %d attempts", d.ID, d.Status, d.AttemptCount)
			}
			staticIDs = append(staticIDs, d.ID)
		}
		return len(ds) == gwEvents, fmt.Sprintf("%d deliveries", len(ds))
	})
	slices.Sort(staticIDs)
	var dynamicIDs []string
	for _, e := range receiverEntries(dynamic.rcv) {
		dynamicIDs = append(dynamicIDs, e.WebhookID)
	}
	slices.Sort(dynamicIDs)
	redelivered := append(slices.Clone(staticIDs[:gwRedeliver]), dynamicIDs[:gwRedeliver]...)
	waitAttempts(t, c, dynamicIDs[:gwRedeliver], 1)

	// :redeliver, then :recover everything the static webhook ever got.
	for _, id := range redelivered {
		c.call(t, "POST", "/v1beta/deliveries/"+id+":redeliver", map[string]any{}, nil)
	}
	waitAttempts(t, c, redelivered, 2)
	var rec struct {
		Count   int  `json:"count"`
		HasMore bool `json:"has_more"`
	}
	c.call(t, "POST", "/v1beta/webhooks/"+hook.ID+":recover",
		map[string]any{"since": since.UTC().Format(time.RFC3339Nano), "only_failed": false}, &rec)
	if rec.Count != gwEvents || rec.HasMore {
		t.Fatalf(":recover re-queued %d deliveries (has_more %v), want all %d", rec.Count, rec.HasMore, gwEvents)
	}
	wantAttempts := map[string]int{}
	for _, id := range dynamicIDs[:gwRedeliver] {
		wantAttempts[id] = 2 // first attempt + :redeliver
	}
	for i, id := range staticIDs {
		wantAttempts[id] = 2 // first attempt + :recover
		if i < gwRedeliver {
			wantAttempts[id] = 3 // + :redeliver
		}
	}
	pollUntil(t, 30*time.Second, 100*time.Millisecond, "recovered deliveries re-sent", func() (bool, string) {
		ds := listDeliveries(t, c, hook.ID)
		done := 0
		for _, d := range ds {
			if d.Status == "succeeded" && d.AttemptCount == wantAttempts[d.ID] {
				done++
			}
		}
		return done == gwEvents, fmt.Sprintf("%d of %d done", done, len(ds))
	})

	// serve saw every re-send answered 200 "duplicate":true.
	dups := map[string]int{
		static.name:  requireAttempts(t, c, staticIDs, wantAttempts),
		dynamic.name: requireAttempts(t, c, dynamicIDs[:gwRedeliver], wantAttempts),
	}

	// Quiet period: the counts settle at gwEvents and stay there.
	var last map[string]int
	var changed time.Time
	pollUntil(t, 15*time.Second, 50*time.Millisecond, "sink counts stable at "+fmt.Sprint(gwEvents), func() (bool, string) {
		n, err := sinkCounts(ctx, b, sources)
		if err != nil {
			return false, err.Error()
		}
		if !maps.Equal(n, last) {
			last, changed = n, time.Now()
		}
		over := slices.ContainsFunc(slices.Collect(maps.Values(n)), func(k int) bool { return k > gwEvents })
		exact := !slices.ContainsFunc(slices.Collect(maps.Values(n)), func(k int) bool { return k != gwEvents })
		return over || (exact && time.Since(changed) >= gwQuiet), fmt.Sprint(n) // over: the checks below say which
	})

	// Each sink holds exactly one entry per webhook-id, for both sources.
	for _, src := range sources {
		redisGot, err := redisEntries(ctx, b.rdb, src.redisStream)
		if err != nil {
			t.Fatalf("XRANGE %s: %v", src.redisStream, err)
		}
		natsGot, err := natsEntries(ctx, src.nats)
		if err != nil {
			t.Fatalf("consume %s: %v", src.natsSubject, err)
		}
		httpIDs := requireOnce(t, src, "http", receiverEntries(src.rcv))
		for sink, ids := range map[string][]string{
			"redis": requireOnce(t, src, "redis", redisGot),
			"nats":  requireOnce(t, src, "nats", natsGot),
		} {
			if !slices.Equal(ids, httpIDs) {
				t.Errorf("%s/%s holds other webhook-ids than %s/http", src.name, sink, src.name)
			}
		}
		if src == static && !slices.Equal(httpIDs, staticIDs) {
			t.Errorf("static sinks hold other webhook-ids than serve's deliveries of the webhook")
		}
	}

	// The gateway's own account: gwEvents accepted and the re-sends
	// answered as duplicates per source, gwEvents forwarded per sink.
	pollUntil(t, 30*time.Second, 50*time.Millisecond, "forward counters", func() (bool, string) {
		for _, src := range sources {
			for _, sink := range []string{"http", "redis", "nats"} {
				if ok := gw.metric(t, hc, "longhook_gateway_forward_attempts_total", map[string]string{"sink": src.name + "/" + sink, "outcome": "ok"}); ok != gwEvents {
					return false, fmt.Sprintf("%s/%s: %v ok", src.name, sink, ok)
				}
			}
		}
		return true, ""
	})
	for _, src := range sources {
		for outcome, want := range map[string]int{"accepted": gwEvents, "duplicate": dups[src.name],
			"unauthenticated": 0, "stale": 0, "invalid": 0, "too_large": 0, "error": 0} {
			if got := gw.metric(t, hc, "longhook_gateway_received_total", map[string]string{"source": src.name, "outcome": outcome}); got != float64(want) {
				t.Errorf("gateway received_total{source=%s,outcome=%s} = %v, want %d", src.name, outcome, got, want)
			}
		}
		for _, sink := range []string{"http", "redis", "nats"} {
			id := src.name + "/" + sink
			if n := gw.metric(t, hc, "longhook_gateway_forward_attempts_total", map[string]string{"sink": id, "outcome": "retry"}); n > 0 {
				t.Logf("note: sink %s needed %v retries", id, n)
			}
			if n := gw.metric(t, hc, "longhook_gateway_forward_attempts_total", map[string]string{"sink": id, "outcome": "dead"}); n > 0 {
				t.Errorf("sink %s parked %v forwards as dead", id, n)
			}
		}
	}
	t.Logf("%d static + %d dynamic events through the gateway to 3 sinks each in %v; then %d :redeliver and %d :recover re-sends, all answered as duplicates; total %v",
		gwEvents, gwEvents, firstPass.Round(time.Millisecond), len(redelivered), rec.Count, time.Since(start).Round(time.Millisecond))
}

// writeSinks appends src's three sinks to a gateway config. Retries start
// fast: a failed forward should not stall the test.
func writeSinks(y *strings.Builder, b *brokers, src *gwSource) {
	const retry = "        retry: {initial: 100ms, max: 1s}\n"
	y.WriteString("    sinks:\n")
	fmt.Fprintf(y, "      - name: http\n        http: {url: %q}\n%s", src.rcv.URL("/"+src.name), retry)
	fmt.Fprintf(y, "      - name: redis\n        redis: {url: %q, stream: %q, no_dedupe: true}\n%s", b.redisURL, src.redisStream, retry)
	fmt.Fprintf(y, "      - name: nats\n        nats: {url: %q, subject: %q}\n%s", b.natsURL, src.natsSubject, retry)
}

// dataID is the data.id of the i-th event published for src.
func dataID(src *gwSource, i int) string { return fmt.Sprintf("batches/%s-%03d", src.name, i) }

// publishBatch publishes events with events:batchPublish; each must make
// exactly one delivery.
func publishBatch(t testing.TB, c *apiClient, events []map[string]any) {
	t.Helper()
	var out struct {
		Events []publishedEvent `json:"events"`
	}
	c.call(t, "POST", "/v1beta/events:batchPublish", map[string]any{"events": events}, &out)
	if len(out.Events) != len(events) {
		t.Fatalf("batchPublish: %d events answered, want %d", len(out.Events), len(events))
	}
	for _, e := range out.Events {
		if e.DeliveryCount != 1 {
			t.Fatalf("batchPublish: event %s has %d deliveries, want 1", e.ID, e.DeliveryCount)
		}
	}
}

// sinkCounts counts what every sink of every source holds.
func sinkCounts(ctx context.Context, b *brokers, sources []*gwSource) (map[string]int, error) {
	n := map[string]int{}
	for _, src := range sources {
		n[src.name+"/http"] = len(src.rcv.requests())
		xlen, err := b.rdb.XLen(ctx, src.redisStream).Result()
		if err != nil {
			return nil, fmt.Errorf("XLEN %s: %w", src.redisStream, err)
		}
		n[src.name+"/redis"] = int(xlen)
		if n[src.name+"/nats"], err = natsCount(ctx, src.nats); err != nil {
			return nil, fmt.Errorf("NATS stream info: %w", err)
		}
	}
	return n, nil
}

// listDeliveries returns every delivery of a webhook (one page).
func listDeliveries(t testing.TB, c *apiClient, webhookID string) []deliveryResource {
	t.Helper()
	var list struct {
		Deliveries    []deliveryResource `json:"deliveries"`
		NextPageToken string             `json:"next_page_token"`
	}
	c.call(t, "GET", "/v1beta/webhooks/"+webhookID+"/deliveries?page_size=1000", nil, &list)
	if list.NextPageToken != "" {
		t.Fatalf("webhook %s has more than one page of deliveries", webhookID)
	}
	return list.Deliveries
}

// getDelivery reads one delivery with its attempts.
func getDelivery(t testing.TB, c *apiClient, id string) gwDelivery {
	t.Helper()
	var d gwDelivery
	c.call(t, "GET", "/v1beta/deliveries/"+id, nil, &d)
	return d
}

// waitAttempts waits until each delivery has succeeded after n attempts.
func waitAttempts(t testing.TB, c *apiClient, ids []string, n int) {
	t.Helper()
	pollUntil(t, 20*time.Second, 50*time.Millisecond, fmt.Sprintf("%d deliveries succeeded after %d attempts", len(ids), n), func() (bool, string) {
		for _, id := range ids {
			if d := getDelivery(t, c, id); d.Status != "succeeded" || d.AttemptCount != n {
				return false, fmt.Sprintf("%s: %s after %d attempts", id, d.Status, d.AttemptCount)
			}
		}
		return true, ""
	})
}

// requireAttempts checks that every attempt of each delivery got 200 from
// the gateway, the first answered "duplicate":false and every later one
// "duplicate":true, and that there were want[id] attempts. It returns the
// number of duplicate answers.
func requireAttempts(t testing.TB, c *apiClient, ids []string, want map[string]int) int {
	t.Helper()
	dups := 0
	var bad []string
	for _, id := range ids {
		d := getDelivery(t, c, id)
		if len(d.Attempts) != want[id] {
			bad = append(bad, fmt.Sprintf("%s: %d attempts, want %d", id, len(d.Attempts), want[id]))
		}
		for _, a := range d.Attempts {
			wantDup := `"duplicate":` + fmt.Sprint(a.Number > 1)
			if a.StatusCode != 200 || !strings.Contains(a.ResponseBody, wantDup) || !strings.Contains(a.ResponseBody, `"webhook_id":"`+id+`"`) {
				bad = append(bad, fmt.Sprintf("%s attempt %d: %d %q (error %q), want 200 with %s",
					id, a.Number, a.StatusCode, a.ResponseBody, a.Error, wantDup))
			}
			if a.Number > 1 {
				dups++
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d unexpected gateway answers recorded by serve: %s", len(bad), head(bad, 5))
	}
	return dups
}

// requireOnce checks that a sink of src holds exactly one entry per
// webhook-id and per published event, each tagged with the source, and
// returns the sorted webhook-ids.
func requireOnce(t testing.TB, src *gwSource, sink string, entries []sinkEntry) []string {
	t.Helper()
	where := src.name + "/" + sink
	byID, byData := map[string]int{}, map[string]int{}
	var bad []string
	for _, e := range entries {
		byID[e.WebhookID]++
		byData[e.DataID]++
		if e.Detail != "" || e.Source != src.name || !strings.HasPrefix(e.WebhookID, "msg_") {
			bad = append(bad, fmt.Sprintf("%+v", e))
		}
	}
	var dupIDs, missing []string
	for id, k := range byID {
		if k > 1 {
			dupIDs = append(dupIDs, fmt.Sprintf("%s×%d", id, k))
		}
	}
	for i := range gwEvents {
		if byData[dataID(src, i)] == 0 {
			missing = append(missing, dataID(src, i))
		}
	}
	switch {
	case len(dupIDs) > 0:
		slices.Sort(dupIDs)
		t.Errorf("%s: %d entries, %d webhook-ids forwarded more than once: %s", where, len(entries), len(dupIDs), head(dupIDs, 10))
	case len(missing) > 0:
		t.Errorf("%s: %d events missing: %s", where, len(missing), head(missing, 10))
	case len(entries) != gwEvents || len(byData) != gwEvents:
		t.Errorf("%s: %d entries for %d distinct events, want %d", where, len(entries), len(byData), gwEvents)
	}
	if len(bad) > 0 {
		t.Errorf("%s: %d malformed entries: %s", where, len(bad), head(bad, 3))
	}
	return slices.Sorted(maps.Keys(byID))
}

// head renders at most n items.
func head(items []string, n int) string {
	if len(items) > n {
		return strings.Join(items[:n], ", ") + fmt.Sprintf(", … (%d more)", len(items)-n)
	}
	return strings.Join(items, ", ")
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
