package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// otlpSpan is one exported span with the service that exported it.
type otlpSpan struct {
	service string
	span    *tracepb.Span
}

func (s otlpSpan) attr(key string) string {
	for _, kv := range s.span.Attributes {
		if kv.Key == key {
			return anyValue(kv.Value)
		}
	}
	return ""
}

func anyValue(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	}
	return fmt.Sprint(v)
}

// otlpCollector is the test's OTLP receiver: it decodes what the exporters
// send (http/protobuf on /v1/traces, and gRPC) and keeps every span.
type otlpCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []otlpSpan
}

func (c *otlpCollector) add(req *coltracepb.ExportTraceServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				service = anyValue(kv.Value)
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				c.spans = append(c.spans, otlpSpan{service: service, span: sp})
			}
		}
	}
}

// Export implements the gRPC TraceService.
func (c *otlpCollector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.add(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// ServeHTTP implements OTLP/HTTP with protobuf bodies.
func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want a protobuf POST to /v1/traces", http.StatusBadRequest)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(raw, req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.add(req)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// trace returns the spans of one trace.
func (c *otlpCollector) trace(traceID []byte) []otlpSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []otlpSpan
	for _, s := range c.spans {
		if bytes.Equal(s.span.TraceId, traceID) {
			out = append(out, s)
		}
	}
	return out
}

// TestTracingThroughGateway follows one event through serve and the
// gateway in the traces they export: serve over OTLP http/protobuf, the
// gateway over OTLP gRPC, both to receivers in this test. The publisher's
// traceparent is the API span's parent; publish is its child; the
// delivery attempt is the publish span's child and links to it (the
// traceparent crossed the store's queue); the webhook has
// trace_propagation, so the attempt's traceparent reaches the gateway,
// whose intake span continues it, then store, then the sink, which
// forwards its own traceparent to the HTTP target.
func TestTracingThroughGateway(t *testing.T) {
	t.Parallel()
	col := &otlpCollector{}
	httpOTLP := httptest.NewServer(col)
	t.Cleanup(httpOTLP.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, col)
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)

	// A short batch delay exports spans promptly; the sampler is explicit.
	common := []string{"OTEL_BSP_SCHEDULE_DELAY=100", "OTEL_TRACES_SAMPLER=parentbased_always_on"}
	s := startServe(t, func(c *serveConfig) {
		c.env = append(c.env, append(common, "OTEL_EXPORTER_OTLP_ENDPOINT="+httpOTLP.URL,
			"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_SERVICE_NAME=e2e-serve")...)
	})
	c := s.client(t)
	sink := newReceiver(t, nil)
	hook := c.createWebhook(t, "http://127.0.0.1:9/not-yet", "batch.succeeded")
	gw := startGatewayEnv(t, append(common, "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+ln.Addr().String(),
		"OTEL_EXPORTER_OTLP_INSECURE=true", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"), "http", func(string) string {
		return fmt.Sprintf("sources:\n  - name: traced\n    verify:\n      hmac_secrets: [%q]\n    sinks:\n      - name: http\n        http: {url: %q}\n",
			hook.NewSigningSecret, sink.URL("/sink"))
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve log (end):\n%s\ngateway log (end):\n%s", tail(s.Logs(), 30), tail(gw.stderr.String(), 30))
		}
	})
	var patched webhookResource
	c.call(t, "PATCH", "/v1beta/webhooks/"+hook.ID, map[string]any{"uri": gw.URL + "/hooks/traced", "trace_propagation": true}, &patched)
	var got map[string]any
	c.call(t, "GET", "/v1beta/webhooks/"+hook.ID, nil, &got)
	if got["trace_propagation"] != true {
		t.Fatalf("webhook after PATCH: trace_propagation = %v, want true", got["trace_propagation"])
	}

	// Publish with the caller's traceparent.
	const callerTrace, callerSpan = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
	req, err := http.NewRequest("POST", s.URL()+"/v1beta/events", strings.NewReader(`{"type":"batch.succeeded","data":{"id":"batches/traced"}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-goog-api-key", s.APIKey)
	req.Header.Set("traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	resp, err := newHTTPClient(t, 30*time.Second).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("publish: %d %s", resp.StatusCode, body)
	}
	eventID := between(string(body), `"id":"`, `"`)

	// The sink target gets the event with a traceparent of the same trace.
	rcvd := sink.waitN(t, 1, 60*time.Second)
	if tp := rcvd.Header.Get("Traceparent"); !strings.HasPrefix(tp, "00-"+callerTrace+"-") {
		t.Fatalf("the sink target got traceparent %q, want one of trace %s", tp, callerTrace)
	}

	traceID, _ := hex.DecodeString(callerTrace)
	want := []string{"POST /{v}/events", "publish", "deliver", "gateway.intake traced", "gateway.store", "gateway.sink traced/http"}
	var byName map[string]otlpSpan
	pollUntil(t, 60*time.Second, 100*time.Millisecond, "every span of the event's trace exported", func() (bool, string) {
		byName = map[string]otlpSpan{}
		var names []string
		for _, sp := range col.trace(traceID) {
			name := sp.span.Name
			if strings.HasPrefix(name, "POST /") && strings.HasSuffix(name, "/events") {
				name = "POST /{v}/events"
			}
			byName[name] = sp
			names = append(names, sp.span.Name)
		}
		for _, n := range want {
			if _, ok := byName[n]; !ok {
				return false, fmt.Sprintf("have %q; missing %q", names, n)
			}
		}
		return true, ""
	})

	api, pub, del := byName["POST /{v}/events"], byName["publish"], byName["deliver"]
	intake, store, sinkSpan := byName["gateway.intake traced"], byName["gateway.store"], byName["gateway.sink traced/http"]
	parent := func(child, par otlpSpan, what string) {
		t.Helper()
		if !bytes.Equal(child.span.ParentSpanId, par.span.SpanId) {
			t.Errorf("%s: parent %x, want %x", what, child.span.ParentSpanId, par.span.SpanId)
		}
	}
	if hex.EncodeToString(api.span.ParentSpanId) != callerSpan {
		t.Errorf("API span's parent %x, want the caller's %s", api.span.ParentSpanId, callerSpan)
	}
	parent(pub, api, "publish")
	parent(del, pub, "deliver")
	parent(intake, del, "gateway intake (the delivery's traceparent)")
	parent(store, intake, "gateway store")
	parent(sinkSpan, store, "gateway sink")
	if api.attr("longhook.project") == "" {
		t.Errorf("API span has no longhook.project")
	}
	if len(del.span.Links) != 1 || !bytes.Equal(del.span.Links[0].SpanId, pub.span.SpanId) {
		t.Errorf("deliver links %v, want one to the publish span %x", del.span.Links, pub.span.SpanId)
	}
	for _, c := range []struct {
		span      otlpSpan
		service   string
		key, want string
	}{
		{api, "e2e-serve", "http.response.status_code", "200"},
		{pub, "e2e-serve", "longhook.event.id", eventID},
		{pub, "e2e-serve", "longhook.event.type", "batch.succeeded"},
		{del, "e2e-serve", "longhook.event.id", eventID},
		{del, "e2e-serve", "server.address", "127.0.0.1"},
		{del, "e2e-serve", "http.response.status_code", "200"},
		{del, "e2e-serve", "longhook.delivery.outcome", "succeeded"},
		{del, "e2e-serve", "longhook.delivery.attempt", "1"},
		{del, "e2e-serve", "longhook.webhook.id", hook.ID},
		{intake, "longhook-gateway", "http.response.status_code", "200"},
		{intake, "longhook-gateway", "longhook.gateway.outcome", "accepted"},
		{store, "longhook-gateway", "longhook.event.type", "batch.succeeded"},
		{sinkSpan, "longhook-gateway", "longhook.gateway.outcome", "ok"},
	} {
		if c.span.service != c.service {
			t.Errorf("span %s exported by %q, want %q", c.span.span.Name, c.span.service, c.service)
		}
		if got := c.span.attr(c.key); got != c.want {
			t.Errorf("span %s: %s = %q, want %q", c.span.span.Name, c.key, got, c.want)
		}
	}
	if tp := rcvd.Header.Get("Traceparent"); !strings.Contains(tp, "-"+hex.EncodeToString(sinkSpan.span.SpanId)+"-") {
		t.Errorf("the sink forwarded traceparent %q, want the sink span %x", tp, sinkSpan.span.SpanId)
	}
	// Log records carry the trace: the attempt's line names its span.
	pollUntil(t, 10*time.Second, 50*time.Millisecond, "the attempt's log line with trace_id", func() (bool, string) {
		return strings.Contains(s.Logs(), "trace_id="+callerTrace+" span_id="+hex.EncodeToString(del.span.SpanId)), ""
	})
}

// between returns the text of s after the first before and up to after.
func between(s, before, after string) string {
	_, rest, _ := strings.Cut(s, before)
	v, _, _ := strings.Cut(rest, after)
	return v
}
