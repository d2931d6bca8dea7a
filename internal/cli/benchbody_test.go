package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// The load generator's hand-built publish bodies decode to the event the
// API takes: type, data with the receiver's sent_at_ns, and the dynamic
// webhook_config when given.
func TestAppendEventDecodes(t *testing.T) {
	pad := strings.Repeat("x", 490)
	for _, uris := range [][]byte{nil, []byte(`["http://127.0.0.1:1/a","http://127.0.0.1:1/b"]`)} {
		var ev struct {
			Type string `json:"type"`
			Data struct {
				ID, OutputFileURI, Pad string
				SentAtNS               int64 `json:"sent_at_ns"`
			} `json:"data"`
			WebhookConfig *struct {
				URIs []string `json:"uris"`
			} `json:"webhook_config"`
		}
		body := appendEvent(nil, pad, uris)
		dec := json.NewDecoder(strings.NewReader(string(body)))
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if ev.Type != "batch.succeeded" || ev.Data.Pad != pad || ev.Data.SentAtNS <= 0 {
			t.Fatalf("decoded %+v from %s", ev, body)
		}
		if (ev.WebhookConfig != nil) != (uris != nil) || (uris != nil && len(ev.WebhookConfig.URIs) != 2) {
			t.Fatalf("webhook_config %+v from %s", ev.WebhookConfig, body)
		}
	}
}
