package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// mqttSink publishes events to an MQTT broker with QoS 1: Send returns
// once the broker's PUBACK arrived. QoS 1 is at least once, like the
// gateway; consumers that must not see a repeat dedupe on the body's or
// the envelope's id.
type mqttSink struct {
	c      MQTTSinkConfig
	client mqtt.Client
}

func newMQTTSink(c MQTTSinkConfig) (*mqttSink, error) {
	opts := mqtt.NewClientOptions().
		AddBroker(c.URL).
		SetClientID(c.ClientID).
		SetUsername(c.Username).
		SetPassword(c.Password).
		SetCleanSession(true).
		SetOrderMatters(false).
		SetConnectTimeout(c.Timeout).
		SetWriteTimeout(c.Timeout).
		// A broker that is down at start-up or later is a sink that is
		// down: the client reconnects in the background, the forwarder
		// retries.
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(30 * time.Second)
	client := mqtt.NewClient(opts)
	client.Connect() // completes in the background (ConnectRetry)
	return &mqttSink{c: c, client: client}, nil
}

// mqttEnvelope is the payload with Envelope set.
type mqttEnvelope struct {
	Headers map[string]string `json:"headers"`
	Body    []byte            `json:"body"` // base64
}

// Send implements Sink.
func (s *mqttSink) Send(ctx context.Context, e *Event) error {
	if !s.client.IsConnectionOpen() {
		// Publishing now would only queue the message in the client.
		return errors.New("mqtt sink: not connected to the broker")
	}
	payload := e.Body
	if s.c.Envelope {
		b, err := json.Marshal(mqttEnvelope{Headers: flatHeader(forwardHeader(e)), Body: e.Body})
		if err != nil {
			return fmt.Errorf("mqtt sink: %w", err)
		}
		payload = b
	}
	tok := s.client.Publish(s.c.Topic, 1, false, payload)
	timer := time.NewTimer(s.c.Timeout)
	defer timer.Stop()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return fmt.Errorf("mqtt sink: publish: %w", ctx.Err())
	case <-timer.C:
		return fmt.Errorf("mqtt sink: no PUBACK within %s", s.c.Timeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqtt sink: publish: %w", err)
	}
	return nil
}

// Close implements Sink.
func (s *mqttSink) Close() error {
	s.client.Disconnect(250)
	return nil
}
