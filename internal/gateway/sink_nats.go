package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsSink publishes events to a JetStream subject and waits for the
// stream's ack. Nats-Msg-Id is the webhook-id, so the stream drops a
// repeat that arrives within its duplicate window (2 minutes by default):
// a forward retried after a lost ack is stored once.
type natsSink struct {
	c       NATSSinkConfig
	nc      *nats.Conn
	js      jetstream.JetStream
	ensured atomic.Bool // CreateStream done (or not asked for)
}

func newNATSSink(_ context.Context, c NATSSinkConfig) (*natsSink, error) {
	// RetryOnFailedConnect: a NATS server that is down at start-up is a
	// sink that is down, retried by the forwarder, not a fatal error.
	nc, err := nats.Connect(c.URL,
		nats.Name("longhook-gateway"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.Timeout(c.Timeout),
	)
	if err != nil {
		return nil, fmt.Errorf("gateway: nats sink: connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("gateway: nats sink: %w", err)
	}
	s := &natsSink{c: c, nc: nc, js: js}
	s.ensured.Store(c.CreateStream == "")
	return s, nil
}

// Send implements Sink.
func (s *natsSink) Send(ctx context.Context, e *Event) error {
	if !s.ensured.Load() {
		_, err := s.js.CreateStream(ctx, jetstream.StreamConfig{Name: s.c.CreateStream, Subjects: []string{s.c.Subject}})
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("nats sink: create stream: %w", err)
		}
		s.ensured.Store(true)
	}
	msg := nats.NewMsg(s.c.Subject)
	msg.Data = e.Body
	for k, v := range forwardHeader(e) {
		// NATS headers are case-sensitive: use the lowercase wire names.
		msg.Header[strings.ToLower(k)] = v
	}
	msg.Header.Set(jetstream.MsgIDHeader, e.WebhookID)
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("nats sink: publish: %w", err)
	}
	return nil
}

// Close implements Sink.
func (s *natsSink) Close() error {
	s.nc.Close()
	return nil
}
