package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// opsEvents are the operational types an operator's webhook subscribes to.
const opsEvents = "webhook.disabled,webhook.enabled,delivery.exhausted"

// opsData decodes the data of an operational delivery.
func opsData(t *testing.T, r received) (string, map[string]any) {
	t.Helper()
	e := r.envelope(t)
	var data map[string]any
	if err := json.Unmarshal(e.Data, &data); err != nil {
		t.Fatalf("%s data: %v: %s", e.Type, err, e.Data)
	}
	return e.Type, data
}

// waitType waits for the first delivery of typ at rcv.
func waitType(t *testing.T, rcv *receiver, typ string, timeout time.Duration) received {
	t.Helper()
	var got received
	rcv.waitFor(t, timeout, typ, func(rs []received) bool {
		for _, r := range rs {
			var e eventEnvelope
			if json.Unmarshal(r.Body, &e) == nil && e.Type == typ {
				got = r
				return true
			}
		}
		return false
	})
	return got
}

// TestOperationalAutoDisable: under --time-scale 3600 a webhook failing for
// the (compressed) 24 h is auto-disabled by the leader, and a second
// webhook of the project subscribed to the operational types receives
// webhook.disabled with the reason and the failure count, signed (three
// independent verifiers accept it); re-enabling it sends webhook.enabled.
func TestOperationalAutoDisable(t *testing.T) {
	t.Parallel()
	requireNode(t)
	s := startServe(t, withFlags("--time-scale", "3600"))
	cli := newCLI(t, s)
	down := newReceiver(t, func(int, received) int { return http.StatusInternalServerError })
	opsRcv := newReceiver(t, nil)
	var failing, ops cliWebhook
	cli.json(t, &failing, "webhooks", "create", "--name", "failing", "--uri", down.URL("/down"), "--events", "batch.succeeded")
	cli.json(t, &ops, "webhooks", "create", "--name", "ops", "--uri", opsRcv.URL("/ops"), "--events", opsEvents)
	cli.run(t, "trigger", "batch.succeeded")

	r := waitType(t, opsRcv, "webhook.disabled", 90*time.Second)
	verifyHMAC(t, r, ops.NewSigningSecret).requireVerified(t, "webhook.disabled")
	_, data := opsData(t, r)
	if data["webhook_id"] != failing.ID || data["reason"] != "consecutive_failures" || data["name"] != "failing" ||
		data["state"] != "disabled_due_to_failed_deliveries" || data["failing_since"] == nil {
		t.Fatalf("webhook.disabled data: %v", data)
	}
	if n, _ := data["failure_count"].(float64); n < 10 {
		t.Fatalf("webhook.disabled failure_count %v, want the run of failures (≥ 10)", data["failure_count"])
	}
	var got cliWebhook
	cli.json(t, &got, "webhooks", "get", failing.ID)
	if got.State != "disabled_due_to_failed_deliveries" {
		t.Fatalf("failing webhook state %q", got.State)
	}

	cli.run(t, "webhooks", "enable", failing.ID)
	r = waitType(t, opsRcv, "webhook.enabled", 30*time.Second)
	verifyHMAC(t, r, ops.NewSigningSecret).requireVerified(t, "webhook.enabled")
	if _, data := opsData(t, r); data["webhook_id"] != failing.ID || data["previous_state"] != "disabled_due_to_failed_deliveries" {
		t.Fatalf("webhook.enabled data: %v", data)
	}
}

// TestOperationalGone: a receiver answering 410 Gone ends the delivery at
// once and disables its webhook: the project's operator webhook receives
// delivery.exhausted (permanent_failure) and webhook.disabled (gone); a
// failed delivery of an operational event raises no further alert.
func TestOperationalGone(t *testing.T) {
	t.Parallel()
	requireNode(t)
	s := startServe(t)
	cli := newCLI(t, s)
	gone := newReceiver(t, func(int, received) int { return http.StatusGone })
	opsRcv := newReceiver(t, nil)
	var hook, ops cliWebhook
	cli.json(t, &hook, "webhooks", "create", "--uri", gone.URL("/gone"), "--events", "batch.failed")
	cli.json(t, &ops, "webhooks", "create", "--uri", opsRcv.URL("/ops"), "--events", opsEvents)
	var ev cliEvent
	cli.json(t, &ev, "trigger", "batch.failed")

	r := waitType(t, opsRcv, "delivery.exhausted", 30*time.Second)
	verifyHMAC(t, r, ops.NewSigningSecret).requireVerified(t, "delivery.exhausted")
	_, data := opsData(t, r)
	if data["event_id"] != ev.ID || data["webhook_id"] != hook.ID || data["reason"] != "permanent_failure" ||
		data["last_status_code"] != 410.0 || data["attempt_count"] != 1.0 || !strings.HasPrefix(data["delivery_id"].(string), "msg_") {
		t.Fatalf("delivery.exhausted data: %v", data)
	}
	r = waitType(t, opsRcv, "webhook.disabled", 30*time.Second)
	if _, data := opsData(t, r); data["webhook_id"] != hook.ID || data["reason"] != "gone" {
		t.Fatalf("webhook.disabled data: %v", data)
	}
	// Manual disable is announced too.
	cli.run(t, "webhooks", "enable", hook.ID)
	cli.run(t, "webhooks", "disable", hook.ID)
	opsRcv.waitFor(t, 30*time.Second, "webhook.enabled and a manual webhook.disabled", func(rs []received) bool {
		manual := false
		for _, r := range rs {
			var e eventEnvelope
			var d map[string]any
			if json.Unmarshal(r.Body, &e) == nil && json.Unmarshal(e.Data, &d) == nil && e.Type == "webhook.disabled" && d["reason"] == "manual" {
				manual = true
			}
		}
		return manual
	})
}
