package engine

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/webhook"
)

func TestDeliversSignedEvent(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	rec := newRecorder(t, nil)
	w, secret := b.webhook(rec.srv.URL + "/hook")
	ev := b.publish(`{"id":"batches/1","output_file_uri":"files/1"}`)
	got := <-rec.got
	v, err := webhook.NewVerifier([]string{secret}, webhook.WithClock(b.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(got.header, got.body); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	if string(got.body) != string(ev.Payload) {
		t.Fatalf("body = %s, want %s", got.body, ev.Payload)
	}
	if ua := got.header.Get("User-Agent"); ua == "" || got.header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers: %v", got.header)
	}
	ds := b.deliveries(w.ID)
	waitFor(t, "success recorded", func() bool {
		ds = b.deliveries(w.ID)
		return len(ds) == 1 && ds[0].Status == core.DeliverySucceeded
	})
	if got.header.Get("webhook-id") != ds[0].ID {
		t.Fatalf("webhook-id %q, want delivery id %q", got.header.Get("webhook-id"), ds[0].ID)
	}
}

// retryCase runs one delivery against a receiver and checks the attempt
// count and the spacing of attempts (exact: jitter is off in these tests;
// the jitter bounds are checked in core's retry tests).
func TestRetrySemantics(t *testing.T) {
	t.Parallel()
	closed := func() string { // a port nobody listens on
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr + "/hook"
	}
	fullSchedule := []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
		30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 6 * time.Hour}
	cases := []struct {
		name     string
		handler  http.HandlerFunc
		uri      func(*recorder) string
		attempts int
		// spacing of the first delays checked (nil: full schedule)
		spacing  []time.Duration
		status   core.DeliveryStatus
		disabled bool
	}{
		{name: "500 retries on the full schedule then the 24 h horizon",
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }, attempts: 11,
			spacing: fullSchedule, status: core.DeliveryFailed},
		{name: "3xx is a failure and is not followed",
			handler:  func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) },
			attempts: 11, spacing: fullSchedule[:3], status: core.DeliveryFailed},
		{name: "410 stops at once and disables the webhook",
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) }, attempts: 1,
			status: core.DeliveryFailed, disabled: true},
		{name: "429 with Retry-After waits at least 60 s",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(http.StatusTooManyRequests)
			}, attempts: 11, spacing: []time.Duration{60 * time.Second, 60 * time.Second, 60 * time.Second}, status: core.DeliveryFailed},
		{name: "503 with Retry-After is honoured within 2× the step",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "3600")
				w.WriteHeader(http.StatusServiceUnavailable)
			}, attempts: 11, spacing: []time.Duration{10 * time.Second, 60 * time.Second, 4 * time.Minute}, status: core.DeliveryFailed},
		{name: "connection refused follows the schedule",
			uri: func(*recorder) string { return closed() }, attempts: 11, spacing: fullSchedule, status: core.DeliveryFailed},
		{name: "success after two failures",
			handler: flaky(2), attempts: 3, spacing: fullSchedule[:2], status: core.DeliverySucceeded},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{})
			rec := newRecorder(t, c.handler)
			uri := rec.srv.URL + "/hook"
			if c.uri != nil {
				uri = c.uri(rec)
			}
			w, _ := b.webhook(uri)
			start := b.clock.Now()
			b.publish(`{"id":"batches/r"}`)
			var id string
			waitFor(t, "delivery", func() bool {
				ds := b.deliveries(w.ID)
				if len(ds) == 1 {
					id = ds[0].ID
				}
				return id != ""
			})
			d, as := b.drive(id)
			if len(as) != c.attempts || d.Status != c.status {
				t.Fatalf("got %d attempts, status %s; want %d, %s", len(as), d.Status, c.attempts, c.status)
			}
			for i := 1; i < len(as) && i <= len(c.spacing); i++ {
				if got := as[i].Time.Sub(as[i-1].Time); got < c.spacing[i-1] || got > c.spacing[i-1]+2*time.Second {
					t.Errorf("delay before attempt %d = %v, want %v", i+1, got, c.spacing[i-1])
				}
			}
			if c.attempts == 11 {
				if last := as[10].Time.Sub(start); last < 24*time.Hour || last > 24*time.Hour+2*time.Second {
					t.Errorf("last attempt %v after the event, want the 24 h horizon", last)
				}
			}
			got, err := b.store.GetWebhook(context.Background(), b.project, w.ID)
			if err != nil {
				t.Fatal(err)
			}
			if disabled := got.State == core.WebhookDisabledDueToFailedDeliveries; disabled != c.disabled {
				t.Fatalf("webhook state %s, want disabled=%v", got.State, c.disabled)
			}
			if c.handler != nil && rec.count() != c.attempts {
				t.Fatalf("receiver saw %d requests, want %d (redirects must not be followed)", rec.count(), c.attempts)
			}
		})
	}
}

func flaky(failures int) http.HandlerFunc {
	n := 0
	return func(w http.ResponseWriter, _ *http.Request) {
		n++
		if n <= failures {
			w.WriteHeader(500)
			return
		}
		w.WriteHeader(200)
	}
}

func TestTimeoutWaitsSixtySeconds(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{attemptTimeout: 100 * time.Millisecond})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	w, _ := b.webhook(rec.srv.URL)
	b.publish(`{}`)
	var d *core.Delivery
	waitFor(t, "a failed attempt", func() bool {
		ds := b.deliveries(w.ID)
		if len(ds) == 1 && ds[0].Attempts == 1 {
			d = ds[0]
			return true
		}
		return false
	})
	_, as, _ := b.store.GetDelivery(context.Background(), b.project, d.ID)
	if gap := d.NextAttemptTime.Sub(as[0].Time); gap != 60*time.Second {
		t.Fatalf("next attempt %v after a timeout, want 60 s", gap)
	}
	if as[0].Error == "" || as[0].StatusCode != 0 {
		t.Fatalf("attempt should record a timeout error: %+v", as[0])
	}
}

func TestRotationSignsWithEverySecret(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	rec := newRecorder(t, nil)
	w, oldSecret := b.webhook(rec.srv.URL)
	newSecret, _ := webhook.NewSecret()
	sealed, _ := b.box.Seal([]byte(newSecret))
	now := b.clock.Now()
	_, err := b.store.UpdateWebhook(context.Background(), b.project, w.ID, func(w *core.Webhook) error {
		w.Secrets[0].ExpireTime = now.Add(24 * time.Hour)
		w.Secrets = append([]core.SigningSecret{{ID: core.NewID(), Sealed: sealed, Hint: "x", CreateTime: now.Add(time.Millisecond)}}, w.Secrets...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b.publish(`{}`)
	got := <-rec.got
	for _, s := range []string{oldSecret, newSecret} {
		v, _ := webhook.NewVerifier([]string{s}, webhook.WithClock(b.clock.Now))
		if err := v.Verify(got.header, got.body); err != nil {
			t.Fatalf("secret alone does not verify during the overlap: %v", err)
		}
	}
	if n := len(splitSig(got.header.Get("webhook-signature"))); n != 2 {
		t.Fatalf("%d signatures, want 2", n)
	}
	// After the overlap only the new secret signs.
	b.clock.Advance(24 * time.Hour)
	b.publish(`{}`)
	got = <-rec.got
	if ts, _ := strconv.ParseInt(got.header.Get("webhook-timestamp"), 10, 64); ts != b.clock.Now().Unix() {
		t.Fatalf("webhook-timestamp %d, want the attempt time %d", ts, b.clock.Now().Unix())
	}
	if n := len(splitSig(got.header.Get("webhook-signature"))); n != 1 {
		t.Fatalf("%d signatures after expiry, want 1", n)
	}
}

func splitSig(h string) []string { return splitSpace(h) }

func splitSpace(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return out
}
