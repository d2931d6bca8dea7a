package gateway

import (
	"context"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// pubsubSink publishes events to a Google Cloud Pub/Sub topic and returns
// once the service assigned a message id (it has stored the message).
// Attributes carry the forwarded headers under their lowercase names; a
// retried forward can publish twice, and subscribers drop repeats by the
// longhook-event-id attribute.
type pubsubSink struct {
	c      PubSubSinkConfig
	client *pubsub.Client
	pub    *pubsub.Publisher
}

func newPubSubSink(ctx context.Context, c PubSubSinkConfig) (*pubsubSink, error) {
	var opts []option.ClientOption
	if c.Emulator != "" {
		opts = append(opts, option.WithEndpoint(c.Emulator), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	// NewClient does not dial: a service that cannot be reached fails
	// forwards, which are retried.
	client, err := pubsub.NewClient(ctx, c.Project, opts...)
	if err != nil {
		return nil, fmt.Errorf("gateway: pubsub sink: %w", err)
	}
	pub := client.Publisher(c.Topic)
	// One message per publish request: the forwarder already has up to
	// `concurrency` sends in flight, and each waits for its own result.
	pub.PublishSettings.DelayThreshold = time.Millisecond
	pub.PublishSettings.Timeout = c.Timeout
	pub.EnableMessageOrdering = c.OrderingKey != ""
	return &pubsubSink{c: c, client: client, pub: pub}, nil
}

// Send implements Sink.
func (s *pubsubSink) Send(ctx context.Context, e *Event) error {
	hdr := forwardHeader(e)
	attrs := make(map[string]string, len(hdr))
	for k, v := range hdr {
		attrs[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	key := ""
	if s.c.OrderingKey != "" {
		key = strings.NewReplacer("{source}", e.Source, "{type}", e.Type, "{id}", e.WebhookID).Replace(s.c.OrderingKey)
	}
	ctx, cancel := context.WithTimeout(ctx, s.c.Timeout)
	defer cancel()
	res := s.pub.Publish(ctx, &pubsub.Message{Data: e.Body, Attributes: attrs, OrderingKey: key})
	if _, err := res.Get(ctx); err != nil {
		if key != "" {
			// A failed publish pauses its ordering key; the forwarder's
			// retry is the resumption.
			s.pub.ResumePublish(key)
		}
		return fmt.Errorf("pubsub sink: publish: %w", err)
	}
	return nil
}

// Close implements Sink.
func (s *pubsubSink) Close() error {
	s.pub.Stop()
	return s.client.Close()
}
