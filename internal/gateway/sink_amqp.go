package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// amqpSink publishes events to RabbitMQ (AMQP 0-9-1) on a channel in
// confirm mode: Send returns once the broker acked the message, which for
// a persistent message routed to a durable queue means it is on disk.
// Messages are mandatory, so one that no queue takes comes back
// (basic.return, which the broker sends before that message's ack) and
// the forward fails instead of the event vanishing. MessageId is the
// dedupe key; headers carry the forwarded headers.
type amqpSink struct {
	c AMQPSinkConfig

	mu       sync.Mutex
	cur      *amqpChan
	declared bool
}

// amqpChan is one connection and its confirm-mode channel. One goroutine
// reads both the returns and the confirms, which the client hands over in
// the order the broker sent them, so a message's return is always seen
// before its ack.
type amqpChan struct {
	conn *amqp.Connection
	ch   *amqp.Channel

	mu       sync.Mutex // publish order = delivery tag order
	waiters  map[uint64]*amqpWaiter
	returned map[string]bool // MessageIds returned as unroutable, until their ack
	closed   bool
}

type amqpWaiter struct {
	id   string
	done chan error // buffered: the reader never blocks
}

func newAMQPSink(c AMQPSinkConfig) *amqpSink { return &amqpSink{c: c} }

// channel returns the open channel, dialling when there is none: a broker
// that is down fails the forward, which is retried.
func (s *amqpSink) channel() (*amqpChan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.cur; c != nil && !c.ch.IsClosed() && !c.conn.IsClosed() {
		return c, nil
	}
	s.closeLocked()
	conn, err := amqp.DialConfig(s.c.URL, amqp.Config{
		Dial:       amqp.DefaultDial(s.c.Timeout),
		Properties: amqp.Table{"connection_name": "longhook-gateway"},
	})
	if err != nil {
		return nil, fmt.Errorf("amqp sink: dial: %w", redactErr(err, s.c.URL))
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err == nil && s.c.DeclareQueue != "" && !s.declared {
		err = s.declare(ch)
	}
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("amqp sink: %w", err)
	}
	c := &amqpChan{conn: conn, ch: ch, waiters: map[uint64]*amqpWaiter{}, returned: map[string]bool{}}
	// Unbuffered: the client's dispatcher hands over each return before it
	// goes on to the next frame (the ack).
	rets := ch.NotifyReturn(make(chan amqp.Return))
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation))
	go c.read(rets, confirms)
	s.cur = c
	return c, nil
}

// read settles the waiters until the channel closes.
func (c *amqpChan) read(rets <-chan amqp.Return, confirms <-chan amqp.Confirmation) {
	for {
		select {
		case r, ok := <-rets:
			if !ok {
				rets = nil
				continue
			}
			c.mu.Lock()
			c.returned[r.MessageId] = true
			c.mu.Unlock()
		case cf, ok := <-confirms:
			if !ok {
				c.failAll(errors.New("amqp sink: channel closed before the confirm"))
				return
			}
			c.mu.Lock()
			w := c.waiters[cf.DeliveryTag]
			delete(c.waiters, cf.DeliveryTag)
			back := w != nil && c.returned[w.id]
			if w != nil {
				delete(c.returned, w.id)
			}
			c.mu.Unlock()
			switch {
			case w == nil:
			case back:
				w.done <- errors.New("amqp sink: unroutable: no queue is bound for this exchange and routing key")
			case !cf.Ack:
				w.done <- errors.New("amqp sink: the broker nacked the message")
			default:
				w.done <- nil
			}
		}
	}
}

func (c *amqpChan) failAll(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for tag, w := range c.waiters {
		w.done <- err
		delete(c.waiters, tag)
	}
}

// publish sends msg and returns the waiter for its confirm.
func (c *amqpChan) publish(ctx context.Context, exchange, key string, msg amqp.Publishing) (*amqpWaiter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("amqp sink: channel closed")
	}
	w := &amqpWaiter{id: msg.MessageId, done: make(chan error, 1)}
	tag := c.ch.GetNextPublishSeqNo()
	c.waiters[tag] = w
	if err := c.ch.PublishWithContext(ctx, exchange, key, true, false, msg); err != nil {
		delete(c.waiters, tag)
		return nil, err
	}
	return w, nil
}

func (s *amqpSink) declare(ch *amqp.Channel) error {
	if _, err := ch.QueueDeclare(s.c.DeclareQueue, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare queue: %w", err)
	}
	if s.c.Exchange != "" {
		if err := ch.QueueBind(s.c.DeclareQueue, s.c.RoutingKey, s.c.Exchange, false, nil); err != nil {
			return fmt.Errorf("bind queue: %w", err)
		}
	}
	s.declared = true
	return nil
}

// Send implements Sink.
func (s *amqpSink) Send(ctx context.Context, e *Event) error {
	c, err := s.channel()
	if err != nil {
		return err
	}
	hdr := forwardHeader(e)
	table := make(amqp.Table, len(hdr))
	for k, v := range hdr {
		table[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	msg := amqp.Publishing{
		DeliveryMode: amqp.Persistent,
		ContentType:  hdr.Get("Content-Type"),
		MessageId:    e.WebhookID,
		Timestamp:    e.ReceivedAt,
		Type:         e.Type,
		AppId:        "longhook-gateway",
		Headers:      table,
		Body:         e.Body,
	}
	ctx, cancel := context.WithTimeout(ctx, s.c.Timeout)
	defer cancel()
	w, err := c.publish(ctx, s.c.Exchange, s.c.RoutingKey, msg)
	if err != nil {
		s.drop(c)
		return fmt.Errorf("amqp sink: publish: %w", err)
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		// No answer in time: the channel's state is unknown; start over.
		s.drop(c)
		return fmt.Errorf("amqp sink: confirm: %w", ctx.Err())
	}
}

// drop closes c's connection if it is still the current one.
func (s *amqpSink) drop(c *amqpChan) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == c {
		s.closeLocked()
	}
}

func (s *amqpSink) closeLocked() {
	if s.cur != nil {
		_ = s.cur.conn.Close() // closes the notify channels: read fails the waiters
	}
	s.cur = nil
}

// Close implements Sink.
func (s *amqpSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
	return nil
}

// redactErr replaces a URL's password in an error message.
func redactErr(err error, raw string) error {
	u, perr := url.Parse(raw)
	if perr != nil || u.User == nil {
		return err
	}
	if p, ok := u.User.Password(); ok && p != "" && strings.Contains(err.Error(), p) {
		return errors.New(strings.ReplaceAll(err.Error(), p, "xxxxx"))
	}
	return err
}
