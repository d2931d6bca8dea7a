package gateway

import (
	"context"
	"fmt"
	"net/http"
	"slices"
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

// Pub/Sub refuses a message whose attributes exceed its limits
// (cloud.google.com/pubsub/quotas): at most 100 attributes, keys of at
// most 256 bytes, values of at most 1,024 bytes.
const (
	pubsubMaxAttrs     = 100
	pubsubMaxAttrKey   = 256
	pubsubMaxAttrValue = 1024
)

// pubsubAttributes returns the forwarded headers as attributes under their
// lowercase names, within Pub/Sub's limits: a header that does not fit —
// typically the webhook-signature of a dynamic webhook, a JWT that carries
// the event and is longer than 1 KiB — is left out (the gateway verified
// it), rather than failing every forward of such events until they are
// given up. The longhook-* attributes come first, so they always fit.
func pubsubAttributes(hdr http.Header) map[string]string {
	type attr struct{ k, v string }
	all := make([]attr, 0, len(hdr))
	for k, v := range hdr {
		all = append(all, attr{strings.ToLower(k), strings.Join(v, ", ")})
	}
	slices.SortFunc(all, func(a, b attr) int {
		la, lb := strings.HasPrefix(a.k, "longhook-"), strings.HasPrefix(b.k, "longhook-")
		switch {
		case la && !lb:
			return -1
		case lb && !la:
			return 1
		}
		return strings.Compare(a.k, b.k)
	})
	attrs := make(map[string]string, len(all))
	for _, a := range all {
		if len(attrs) == pubsubMaxAttrs || len(a.k) > pubsubMaxAttrKey || len(a.v) > pubsubMaxAttrValue {
			continue
		}
		attrs[a.k] = a.v
	}
	return attrs
}

// Send implements Sink.
func (s *pubsubSink) Send(ctx context.Context, e *Event) error {
	attrs := pubsubAttributes(forwardHeader(e))
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
