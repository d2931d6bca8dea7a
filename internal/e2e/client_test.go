package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// apiClient is a tiny JSON client of serve's REST API.
type apiClient struct {
	base func() string // the server's base URL, read per request (restarts may move it)
	key  string
	hc   *http.Client
}

// newHTTPClient returns a client with its own transport, whose idle
// connections are closed when the test ends (no leaked goroutines).
func newHTTPClient(t testing.TB, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

// client returns an API client authenticated with the bootstrap key.
func (s *serveProc) client(t testing.TB) *apiClient {
	return &apiClient{base: s.URL, key: s.APIKey, hc: newHTTPClient(t, 30*time.Second)}
}

// do sends a request with in as the JSON body (nil for none) and decodes
// a 2xx response into out (when not nil). It returns the status and the raw
// response body; err is set for transport failures only.
func (c *apiClient) do(ctx context.Context, method, path string, in, out any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base()+path, body)
	if err != nil {
		return 0, nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("x-goog-api-key", c.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, raw, err
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, raw, fmt.Errorf("decode %s %s: %w (%s)", method, path, err, raw)
		}
	}
	return resp.StatusCode, raw, nil
}

// call is do that ends the test unless the answer is 200.
func (c *apiClient) call(t testing.TB, method, path string, in, out any) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	status, raw, err := c.do(ctx, method, path, in, out)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if status != http.StatusOK {
		t.Fatalf("%s %s: status %d: %s", method, path, status, raw)
	}
	return raw
}

// webhookResource is the part of the Webhook resource the tests read.
type webhookResource struct {
	ID               string   `json:"id"`
	URI              string   `json:"uri"`
	SubscribedEvents []string `json:"subscribed_events"`
	State            string   `json:"state"`
	NewSigningSecret string   `json:"new_signing_secret"`
	SigningSecrets   []struct {
		TruncatedSecret string `json:"truncated_secret"`
		ExpireTime      string `json:"expire_time"`
	} `json:"signing_secrets"`
}

// createWebhook creates a static webhook and returns it with its secret.
func (c *apiClient) createWebhook(t testing.TB, uri string, events ...string) webhookResource {
	t.Helper()
	var w webhookResource
	c.call(t, "POST", "/v1beta/webhooks", map[string]any{"name": "e2e", "uri": uri, "subscribed_events": events}, &w)
	if w.ID == "" || w.NewSigningSecret == "" {
		t.Fatalf("create webhook: no id or secret in %+v", w)
	}
	return w
}

// publishedEvent is the publish API's answer for one event.
type publishedEvent struct {
	ID            string `json:"id"`
	Type          string `json:"type"`
	DeliveryCount int    `json:"delivery_count"`
}

// publish publishes one event (POST /v1beta/events).
func (c *apiClient) publish(t testing.TB, event map[string]any) publishedEvent {
	t.Helper()
	var ev publishedEvent
	c.call(t, "POST", "/v1beta/events", event, &ev)
	if ev.ID == "" {
		t.Fatalf("publish: no event id")
	}
	return ev
}

// deliveryResource is GET /v1beta/deliveries/{id}.
type deliveryResource struct {
	ID           string `json:"id"`
	EventID      string `json:"event_id"`
	WebhookID    string `json:"webhook_id"`
	URI          string `json:"uri"`
	Status       string `json:"status"`
	AttemptCount int    `json:"attempt_count"`
	LastError    string `json:"last_error"`
	Attempts     []struct {
		Number     int    `json:"number"`
		Time       string `json:"time"`
		StatusCode int    `json:"status_code"`
		Error      string `json:"error"`
	} `json:"attempts"`
}

// pollUntil calls check every interval until it returns true or timeout
// passes; then it ends the test with msg and the last check's detail.
func pollUntil(t testing.TB, timeout, interval time.Duration, msg string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, detail := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v (last: %s)", msg, timeout, detail)
		}
		<-tick.C
	}
}
