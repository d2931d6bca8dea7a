package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Headers the gateway adds to what it forwards (HTTP and NATS headers,
// Redis fields), next to the webhook headers it received.
const (
	HeaderSource     = "longhook-source"      // the source name
	HeaderReceivedAt = "longhook-received-at" // RFC 3339 UTC, millisecond precision
	// HeaderEventID is the dedupe key: the webhook-id for Standard
	// Webhooks and Gemini, the provider's delivery id for a preset, or
	// "sha256:..." of the body where the provider sends none.
	HeaderEventID = "longhook-event-id"
	// HeaderEventType is the event type, when the gateway found one.
	HeaderEventType = "longhook-event-type"
)

// A Sink takes events from the gateway. Send must be idempotent enough for
// at-least-once delivery: the gateway calls it again after a failure or a
// crash between a successful Send and the record of its success.
type Sink interface {
	// Send delivers e, returning nil once the destination holds it.
	Send(ctx context.Context, e *Event) error
	// Close releases connections.
	Close() error
}

// newSink builds the sink a config entry describes. Connections are made
// lazily or retried in the background, so a destination that is down at
// start-up does not stop the gateway.
func newSink(ctx context.Context, source string, c SinkConfig) (Sink, error) {
	switch {
	case c.HTTP != nil:
		return newHTTPSink(*c.HTTP, c.Concurrency), nil
	case c.Redis != nil:
		return newRedisSink(*c.Redis)
	case c.NATS != nil:
		return newNATSSink(ctx, *c.NATS)
	case c.Kafka != nil:
		return newKafkaSink(*c.Kafka)
	case c.AMQP != nil:
		return newAMQPSink(*c.AMQP), nil
	case c.MQTT != nil:
		return newMQTTSink(*c.MQTT)
	case c.PubSub != nil:
		return newPubSubSink(ctx, *c.PubSub)
	case c.Discard != nil:
		return discardSink{}, nil
	}
	return nil, fmt.Errorf("gateway: source %s sink %s: no sink type", source, c.Name)
}

// forwardHeader returns the headers to send downstream: the webhook
// headers as received (so the destination can verify the signature again)
// plus the gateway's own.
func forwardHeader(e *Event) http.Header {
	h := make(http.Header, len(e.Header)+5)
	for k, v := range e.Header {
		h[k] = v
	}
	h.Set(HeaderSource, e.Source)
	h.Set(HeaderReceivedAt, e.ReceivedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	h.Set(HeaderEventID, e.WebhookID)
	if e.Type != "" {
		h.Set(HeaderEventType, e.Type)
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	return h
}

// keptHeader reports whether a received header is stored and replayed.
func keptHeader(canonical string) bool {
	return strings.HasPrefix(canonical, "Webhook-") || canonical == "Content-Type" || canonical == "User-Agent"
}

type discardSink struct{}

func (discardSink) Send(context.Context, *Event) error { return nil }
func (discardSink) Close() error                       { return nil }

// httpSink POSTs the original body to an internal service.
type httpSink struct {
	c       HTTPSinkConfig
	client  *http.Client
	headers http.Header
}

// maxSinkResponse bounds the response bytes read (and discarded) from a
// destination, so keep-alive connections can be reused.
const maxSinkResponse = 4 << 10

func newHTTPSink(c HTTPSinkConfig, concurrency int) *httpSink {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: c.Timeout,
		MaxIdleConns:          concurrency,
		MaxIdleConnsPerHost:   concurrency,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	h := http.Header{}
	for k, v := range c.Headers {
		h.Set(k, v)
	}
	return &httpSink{
		c: c,
		client: &http.Client{
			Transport: tr,
			Timeout:   c.Timeout,
			// A redirect is a failure: following it would send the event
			// somewhere the operator did not configure.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		headers: h,
	}
}

// Send implements Sink: any 2xx is success; everything else is retried.
func (s *httpSink) Send(ctx context.Context, e *Event) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.c.URL, bytes.NewReader(e.Body))
	if err != nil {
		return fmt.Errorf("http sink: %w", err)
	}
	req.Header = forwardHeader(e)
	for k, v := range s.headers {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "longhook-gateway")
	if ua := e.Header.Get("User-Agent"); ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("http sink: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxSinkResponse))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &statusError{code: resp.StatusCode}
	}
	return nil
}

// Close implements Sink.
func (s *httpSink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("http sink: status %d", e.code) }
