package api

import (
	"bytes"
	"encoding/json"
	"net/url"
	"testing"

	"github.com/longhook/longhook/internal/core"
)

// FuzzDecodeRequests feeds arbitrary bodies to the strict JSON decoder with
// every request type the API decodes: it never panics, and every failure
// is a 400 INVALID_ARGUMENT.
func FuzzDecodeRequests(f *testing.F) {
	for _, s := range []string{
		`{"name":"n","uri":"https://a.example/h","subscribed_events":["batch.succeeded"]}`,
		`{"type":"batch.succeeded","data":{"id":"batches/1"},"webhook_config":{"uris":["https://a.example/h"],"user_metadata":{"k":"v"}}}`,
		`{"events":[{"type":"t"}]}`, `{"revocation_behavior":"revoke_previous_secrets_immediately"}`,
		`{"since":"2026-05-05T12:00:00Z","only_failed":true}`,
		`{"batch":{"displayName":"b","inputConfig":{"fileName":"files/x"},"webhookConfig":{"uris":["https://a.example/h"]}}}`,
		`{"model":"m","input":"hi","background":true,"webhook_config":{"uris":["https://a.example/h"]}}`,
		`{"instances":[{"prompt":"p"}],"webhookConfig":{"uris":["https://a.example/h"]}}`,
		`{"name":"a","name":"b"}`, `{"NAME":"x"}`, `{"n\u0061me":"a","name":"b"}`, `{"type":"t","data":{"a":[{"b":1,"b":2}]}}`,
		`{"type":"t","data":{"s":"\\\"","s2":"\"k\":1,\"k\":2"}}`, `{"batch":{"DisplayName":"b","display_name":"c"}}`,
		`{"type":"t","webhook_config":{"URIs":["https://a.example/h"]}}`, `{"rate_limit":{"per_second":1,"per_second":2}}`, `[]`, `{"a":`, "{\"name\":\"\xff\"}", ``, `null`,
	} {
		f.Add([]byte(s))
	}
	targets := []func() any{
		func() any { return new(createProjectRequest) }, func() any { return new(createKeyRequest) },
		func() any { return new(createWebhookRequest) }, func() any { return new(updateWebhookRequest) },
		func() any { return new(rotateRequest) }, func() any { return new(recoverRequest) },
		func() any { return new(publishRequest) }, func() any { return new(batchPublishRequest) },
		func() any { return new(batchCreateBody) }, func() any { return new(interactionBody) },
		func() any { return new(videoBody) }, func() any { return new(struct{}) },
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, newV := range targets {
			v := newV()
			err := decodeBytes(body, v)
			if err != nil && !core.IsInvalid(err) {
				t.Fatalf("%T: %v is not INVALID_ARGUMENT", v, err)
			}
			if err == nil && hasDuplicateName(body) {
				t.Fatalf("%T: accepted a body with a name twice in one object", v)
			}
		}
	})
}

// FuzzPageToken checks page tokens: any string decodes without panicking,
// only a token minted for the same collection and project decodes, and it
// gives back the cursor it was minted for.
func FuzzPageToken(f *testing.F) {
	p := pageTokens{key: []byte("0123456789abcdef0123456789abcdef")}
	f.Add("msg_01J", "")
	f.Add("", p.encode("webhooks", "proj", "wh_1"))
	f.Add("c", "not base64 !")
	f.Fuzz(func(t *testing.T, cursor, token string) {
		if c, err := p.decode("webhooks", "proj", token); err == nil && token != "" {
			if p.encode("webhooks", "proj", c) != token {
				t.Fatalf("token %q accepted but not minted by us", token)
			}
		} else if err != nil && !core.IsInvalid(err) {
			t.Fatalf("decode error %v", err)
		}
		if cursor == "" {
			return
		}
		tok := p.encode("webhooks", "proj", cursor)
		if got, err := p.decode("webhooks", "proj", tok); err != nil || got != cursor {
			t.Fatalf("round trip of %q: %q, %v", cursor, got, err)
		}
		if _, err := p.decode("webhooks", "other", tok); err == nil {
			t.Fatal("a token of another project decoded")
		}
		if _, err := p.decode("events", "proj", tok); err == nil {
			t.Fatal("a token of another collection decoded")
		}
		q := url.Values{"page_token": {tok}, "page_size": {"7"}}
		if n, c, err := p.page(q, "webhooks", "proj"); err != nil || n != 7 || c != cursor {
			t.Fatalf("page(): %d %q %v", n, c, err)
		}
	})
}

// hasDuplicateName is the fuzzer's reference for the duplicate check: a
// json.Decoder token walk with a set of names per open object.
func hasDuplicateName(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	type obj struct {
		names   map[string]bool
		wantKey bool
	}
	var stack []*obj
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *obj
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &obj{names: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, nil)
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if top != nil && top.wantKey {
				name := tok.(string)
				if top.names[name] {
					return true
				}
				top.names[name] = true
				top.wantKey = false
				continue
			}
		}
		if len(stack) > 0 && stack[len(stack)-1] != nil {
			stack[len(stack)-1].wantKey = true
		}
	}
}
