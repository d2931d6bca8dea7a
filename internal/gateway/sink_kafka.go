package gateway

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaSink produces events to a Kafka topic and returns once the
// partition's in-sync replicas hold the record (acks=all). The producer is
// idempotent (franz-go's default), so the client's own retries never write
// a record twice; a forward retried by the gateway after a crash can still
// arrive twice, and consumers drop it by the record key, which is the
// event's dedupe key. Headers: the forwarded headers under their
// lowercase names (webhook-id, webhook-timestamp, webhook-signature or
// the provider's, longhook-source, longhook-received-at, ...).
type kafkaSink struct {
	c      KafkaSinkConfig
	client *kgo.Client
}

func newKafkaSink(c KafkaSinkConfig) (*kafkaSink, error) {
	// The client connects lazily and retries in the background: a broker
	// that is down at start-up delays this sink only.
	client, err := kgo.NewClient(
		kgo.SeedBrokers(c.Brokers...),
		kgo.DefaultProduceTopic(c.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(c.Timeout),
		kgo.ProduceRequestTimeout(c.Timeout),
		kgo.ClientID("longhook-gateway"),
	)
	if err != nil {
		return nil, fmt.Errorf("gateway: kafka sink: %w", err)
	}
	return &kafkaSink{c: c, client: client}, nil
}

// Send implements Sink.
func (s *kafkaSink) Send(ctx context.Context, e *Event) error {
	hdr := forwardHeader(e)
	rec := &kgo.Record{Key: []byte(e.WebhookID), Value: e.Body, Headers: make([]kgo.RecordHeader, 0, len(hdr))}
	for k, vs := range hdr {
		for _, v := range vs {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: strings.ToLower(k), Value: []byte(v)})
		}
	}
	if err := s.client.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("kafka sink: produce: %w", err)
	}
	return nil
}

// Close implements Sink.
func (s *kafkaSink) Close() error {
	s.client.Close()
	return nil
}
