package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/longhook/longhook/webhook"
)

// TestRouting sends events of several types through one source whose sinks
// take some of them (by type pattern, by a JSON member's value) and one
// that receives only the "data" member plus an added field.
func TestRouting(t *testing.T) {
	t.Parallel()
	invoices, paid, slim, all := newRecorder(t), newRecorder(t), newRecorder(t), newRecorder(t)
	var sinks []SinkConfig
	cfgYAML := fmt.Sprintf(`
- name: invoices
  http: {url: %q}
  route: {types: ["invoice.*"]}
- name: paid
  http: {url: %q}
  route: {match: {"data.status": "paid", "data.lines.0.amount": 500}}
- name: slim
  http: {url: %q}
  route: {types: ["invoice.*", "charge.succeeded"]}
  transform: {select: data, add: {origin: "{source}/{type}", id: "{id}"}}
- name: all
  http: {url: %q}
`, invoices.srv.URL, paid.srv.URL, slim.srv.URL, all.srv.URL)
	if err := yaml.Unmarshal([]byte(cfgYAML), &sinks); err != nil {
		t.Fatal(err)
	}
	secretText, secret := mustSecret(t)
	gw := startGateway(t, Config{Sources: []SourceConfig{{Name: "billing", Verify: VerifyConfig{HMACSecrets: []string{secretText}}, Sinks: sinks}}})
	events := map[string]string{
		"e1": `{"type":"invoice.paid","data":{"status":"paid","lines":[{"amount":500}]}}`,
		"e2": `{"type":"invoice.created","data":{"status":"draft","lines":[{"amount":500}]}}`,
		"e3": `{"type":"charge.succeeded","data":{"status":"paid","lines":[{"amount":700}]}}`,
		"e4": `{"type":"customer.created","data":{"status":"paid","lines":[{"amount":500}]}}`,
		"e5": `not json at all`,
	}
	for id, body := range events {
		if s, b := post(t, gw.srv.Client(), gw.srv.URL+"/hooks/billing", secret, id, time.Now(), []byte(body)); s != 200 {
			t.Fatalf("post %s: %d %s", id, s, b)
		}
	}
	waitFor(t, 10*time.Second, "every event at the unrouted sink", func() bool { return all.count() == len(events) })
	idle(t, gw.Gateway)
	want := map[string][]string{
		"invoices": {"e1", "e2"},
		"paid":     {"e1", "e4"},
		"slim":     {"e1", "e2", "e3"},
	}
	for name, rec := range map[string]*recorder{"invoices": invoices, "paid": paid, "slim": slim} {
		got := rec.snapshot()
		if len(got) != len(want[name]) {
			t.Errorf("%s got %v, want %v", name, got, want[name])
		}
		for _, id := range want[name] {
			if got[id] != 1 {
				t.Errorf("%s: %s delivered %d times, want 1", name, id, got[id])
			}
		}
	}
	slim.mu.Lock()
	defer slim.mu.Unlock()
	var body map[string]any
	if err := json.Unmarshal(slim.bodies["e1"], &body); err != nil {
		t.Fatal(err)
	}
	if body["status"] != "paid" || body["origin"] != "billing/invoice.paid" || body["id"] != "e1" || body["type"] != nil {
		t.Errorf("transformed payload: %s", slim.bodies["e1"])
	}
	for _, h := range slim.headers {
		if h.Get(webhook.HeaderSignature) != "" || h.Get(HeaderEventID) == "" {
			t.Errorf("a transformed payload is forwarded without its signature, with its id: %v", h)
		}
	}
}

func TestRouteConfigErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		yaml, want string
	}{
		{`route: {}`, "set types, match or both"},
		{`route: {types: [""]}`, "route.types[0]: empty pattern"},
		{`route: {match: {"data..x": 1}}`, "empty member name"},
		{`route: {match: {"data": {"a": 1}}}`, "must be a string, number, boolean or null"},
		{`transform: {}`, "set select, add or both"},
		{`transform: {add: {x: "{tenant}"}}`, "only {source}, {type}, {id} and {received_at}"},
		{`transform: {select: "."}`, "empty member name"},
		{`route: {tpyes: [x]}`, "field tpyes not found"},
	}
	for _, c := range cases {
		src := fmt.Sprintf("sources:\n  - name: s\n    verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}\n    sinks:\n      - name: k\n        discard: {}\n        %s\n", c.yaml)
		cfg, err := ParseConfig([]byte(src), nil)
		if err == nil {
			err = cfg.withDefaults().validate()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.yaml, err, c.want)
		}
	}
}

func TestGlob(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"invoice.*", "invoice.paid", true}, {"invoice.*", "invoice", false}, {"*", "", true},
		{"orders/*", "orders/create", true}, {"*.succeeded", "charge.succeeded", true},
		{"a*b*c", "axxbyyc", true}, {"a*a", "a", false}, {"exact", "exact", true}, {"exact", "exactly", false},
	} {
		if got := glob(c.p, c.s); got != c.want {
			t.Errorf("glob(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

// TestTransformDropsThePresetsSignature: a transformed payload is not
// covered by the sender's signature, so its signature header is not
// forwarded with it — also a generic preset's, whose name says nothing
// of signing (X-Acme-Mac); the other headers of the scheme stay.
func TestTransformDropsThePresetsSignature(t *testing.T) {
	t.Parallel()
	const secret = "generic-transform-secret"
	rec := newRecorder(t)
	vc := VerifyConfig{Kind: "hmac", HMACSecrets: []string{secret},
		HMAC: &GenericHMACConfig{Header: "X-Acme-Mac", IDHeader: "X-Acme-Delivery"}}
	gw := startGateway(t, Config{Sources: []SourceConfig{{Name: "acme", Verify: vc,
		Sinks: []SinkConfig{{Name: "slim", HTTP: &HTTPSinkConfig{URL: rec.srv.URL}, Transform: &TransformConfig{Select: "data"}}}}}})
	v, err := vc.preset(nil)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"thing.done","data":{"k":"v"}}`)
	req, _ := http.NewRequest(http.MethodPost, gw.srv.URL+"/hooks/acme", bytes.NewReader(body))
	req.Header = v.Sign([]byte(secret), "d1", time.Now(), "", body)
	resp, err := gw.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("post: %d", resp.StatusCode)
	}
	waitFor(t, 10*time.Second, "the transformed event", func() bool { return rec.count() == 1 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, h := range rec.headers {
		if h.Get("X-Acme-Mac") != "" || h.Get("X-Acme-Delivery") != "d1" {
			t.Errorf("forwarded headers %v: want X-Acme-Delivery and no X-Acme-Mac", h)
		}
	}
}
