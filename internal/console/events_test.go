package console_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestEventPageShowsEveryDelivery (issue 16): an event's page lists every
// delivery it caused even when other events' deliveries were made in the
// same millisecond (one batch publish) and in the minutes around it — the
// page once read only a few of the newest deliveries near the event and
// showed "Deliveries it caused (0)" on a busy store.
func TestEventPageShowsEveryDelivery(t *testing.T) {
	f := newStreamFixture(t, nil)
	ctx := t.Context()
	at := time.Now().UTC().Truncate(time.Millisecond)
	target := storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, at, f.hook)
	batch := []core.NewEvent{target}
	for i := range 30 { // the same millisecond (one batch publish)
		_ = i
		batch = append(batch, storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, at, f.hook))
	}
	for i := range 30 { // the next seconds
		batch = append(batch, storetest.NewEvent(f.hook.ProjectID, core.EventBatchSucceeded, at.Add(time.Duration(i+1)*time.Second), f.hook))
	}
	if _, err := f.st.PublishEvents(ctx, batch); err != nil {
		t.Fatal(err)
	}
	want := target.Deliveries[0].ID
	ck := f.signIn()
	resp := f.get(ctx, "/console/events?id="+target.Event.ID, ck)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("event page: %d", resp.StatusCode)
	}
	if !strings.Contains(string(body), "Deliveries it caused (1)") || !strings.Contains(string(body), want) {
		t.Fatalf("the event's page does not list its delivery %s:\n%s", want, body)
	}
}
