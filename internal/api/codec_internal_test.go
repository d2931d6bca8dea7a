package api

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/longhook/longhook/internal/core"
)

func TestJSONPathAt(t *testing.T) {
	doc := []byte(`{"name":"n","data":{"a":[1,{"b":"XX"},"YY"],"c":"ZZ"},"webhook_config":{"uris":["u"],"user_metadata":{"k":"WW"}}}`)
	for _, c := range []struct {
		marker, want string
	}{
		{"XX", "data.a[1].b"},
		{"YY", "data.a[2]"},
		{"ZZ", "data.c"},
		{"WW", "webhook_config.user_metadata.k"},
		{`"n"`, "name"},
	} {
		off := int64(bytes.Index(doc, []byte(c.marker)))
		if got := jsonPathAt(doc, off); got != c.want {
			t.Errorf("at %q: %q, want %q", c.marker, got, c.want)
		}
	}
}

// TestDecodeStrictNames (issue 13, defect 12): a member name that matches
// a field only case-insensitively, and a name given twice in one object at
// any depth, are refused naming the member; the exact names — both
// spellings where the API documents two — are accepted.
func TestDecodeStrictNames(t *testing.T) {
	t.Parallel()
	many := func(dup string) string { // 40 members, then dup
		var b strings.Builder
		b.WriteString(`{"type":"t","data":{`)
		for i := range 40 {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		b.WriteString(dup + `:0}}`)
		return b.String()
	}
	refused := []struct {
		body  string
		v     any
		field string
	}{
		{`{"URI":"https://a.example/h"}`, new(createWebhookRequest), `"URI"`},
		{`{"Name":"n"}`, new(createWebhookRequest), `"Name"`},
		{`{"subscribed_Events":["batch.succeeded"]}`, new(createWebhookRequest), `"subscribed_Events"`},
		{`{"name":"a","name":"b"}`, new(createWebhookRequest), `duplicate field "name"`},
		{`{"n\u0061me":"a","name":"b"}`, new(createWebhookRequest), `duplicate field "name"`},
		{`{"type":"t","Type":"u"}`, new(publishRequest), `"Type"`},
		{`{"type":"t","webhook_config":{"URIs":["https://a.example/h"]}}`, new(publishRequest), `"webhook_config.URIs"`},
		{`{"type":"t","webhook_config":{"uris":[],"uris":["https://a.example/h"]}}`, new(publishRequest), `"webhook_config.uris"`},
		{`{"type":"t","data":{"amount":1,"amount":1000}}`, new(publishRequest), `duplicate field "data.amount"`},
		{`{"type":"t","data":{"a":[{"b":1},{"b":1,"b":2}]}}`, new(publishRequest), `"data.a[1].b"`},
		{many(`"k7"`), new(publishRequest), `"data.k7"`},
		{`{"events":[{"type":"t"},{"type":"t","Subject":"s"}]}`, new(batchPublishRequest), `"events[1].Subject"`},
		{`{"batch":{"DisplayName":"b"}}`, new(batchCreateBody), `"batch.DisplayName"`},
		{`{"batch":{"inputConfig":{"FileName":"files/x"}}}`, new(batchCreateBody), `"batch.inputConfig.FileName"`},
		{`{"model":"m","Background":true}`, new(interactionBody), `"Background"`},
		{`{"rate_limit":{"per_second":1},"Rate_Limit":null}`, new(createWebhookRequest), `"Rate_Limit"`},
	}
	for _, c := range refused {
		err := decodeBytes([]byte(c.body), c.v)
		if err == nil {
			t.Errorf("%s into %T: accepted", c.body, c.v)
			continue
		}
		if !core.IsInvalid(err) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s into %T: %v, want INVALID_ARGUMENT naming %s", c.body, c.v, err, c.field)
		}
	}
	accepted := []struct {
		body string
		v    any
	}{
		{`{"name":"n","uri":"https://a.example/h","subscribed_events":["batch.succeeded"],"rate_limit":{"per_second":2,"burst":3}}`, new(createWebhookRequest)},
		{`{"batch":{"displayName":"b","inputConfig":{"fileName":"files/x"},"webhookConfig":{"uris":["https://a.example/h"],"userMetadata":{"k":"v"}}}}`, new(batchCreateBody)},
		{`{"batch":{"display_name":"b","input_config":{"file_name":"files/x"},"webhook_config":{"uris":["https://a.example/h"],"user_metadata":{"k":"v"}}}}`, new(batchCreateBody)},
		{`{"type":"t","data":{"a":{"x":1},"b":{"x":1},"s":"\"x\":1,\"x\":2"},"webhook_config":{"uris":["https://a.example/h"],"user_metadata":{"K":1,"k":2}}}`, new(publishRequest)},
		{many(`"k40"`), new(publishRequest)},
		{`{"instances":[{"prompt":"p"}],"webhookConfig":{"uris":["https://a.example/h"]}}`, new(videoBody)},
	}
	for _, c := range accepted {
		if err := decodeBytes([]byte(c.body), c.v); err != nil {
			t.Errorf("%s into %T: %v", c.body, c.v, err)
		}
	}
}
