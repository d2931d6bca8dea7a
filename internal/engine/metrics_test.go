package engine

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/longhook/longhook/internal/core"
)

// TestMetricsNameNoWebhook (issue 13, defect 10): the unauthenticated
// /metrics aggregates failing webhooks by streak and names none, and the
// per-webhook state is dropped once the webhook is deleted or disabled.
func TestMetricsNameNoWebhook(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, nil)
	b := setup(t, setupOpts{metrics: m, metricsPrune: 20 * time.Millisecond})
	fail := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	deleted, _ := b.webhook(fail.srv.URL)
	disabled, _ := b.webhook(fail.srv.URL + "/other")
	b.publish(`{"id":"batches/1"}`)
	waitFor(t, "two failing webhooks", func() bool { return m.tracked() == 2 })

	text := scrape(t, reg)
	for _, id := range []string{deleted.ID, disabled.ID} {
		if strings.Contains(text, id) {
			t.Fatalf("/metrics names webhook %s:\n%s", id, text)
		}
	}
	if !strings.Contains(text, `longhook_webhooks_failing_streak{streak="1"} 2`) {
		t.Fatalf("no aggregate of the failing webhooks:\n%s", text)
	}

	ctx := context.Background()
	if err := b.store.DeleteWebhook(ctx, b.project, deleted.ID, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.UpdateWebhook(ctx, b.project, disabled.ID, func(w *core.Webhook) error {
		w.State = core.WebhookDisabled
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the streaks of the deleted and the disabled webhook dropped", func() bool { return m.tracked() == 0 })
	if text := scrape(t, reg); !strings.Contains(text, `longhook_webhooks_failing_streak{streak="1"} 0`) ||
		!strings.Contains(text, "longhook_webhooks_failing 0") {
		t.Fatalf("after the prune:\n%s", text)
	}
}

// scrape renders reg's series as name{label="value",...} value lines
// (gauges and counters: what the assertions look at).
func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			sb.WriteString(mf.GetName())
			if len(m.GetLabel()) > 0 {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				sb.WriteString("{" + strings.Join(ls, ",") + "}")
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			fmt.Fprintf(&sb, " %g\n", v)
		}
	}
	return sb.String()
}
