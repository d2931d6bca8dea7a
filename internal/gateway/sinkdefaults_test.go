package gateway

import (
	"testing"
	"time"
)

// TestSinkDefaultsFillTimeoutsOnACopy: every sink kind gets its default
// timeout (HTTP 15 s, a broker 5 s), a timeout given is kept, and the
// caller's settings are not changed in place.
func TestSinkDefaultsFillTimeoutsOnACopy(t *testing.T) {
	t.Parallel()
	src := SourceConfig{Name: "s", DedupeHorizon: time.Hour}
	in := SinkConfig{Name: "k", HTTP: &HTTPSinkConfig{}, Redis: &RedisSinkConfig{}, NATS: &NATSSinkConfig{},
		Kafka: &KafkaSinkConfig{}, AMQP: &AMQPSinkConfig{}, MQTT: &MQTTSinkConfig{}, PubSub: &PubSubSinkConfig{}}
	out := in.withDefaults(src)
	for name, c := range map[string]struct {
		got, want time.Duration
		given     *time.Duration
	}{
		"http":   {out.HTTP.Timeout, defaultHTTPTimeout, &in.HTTP.Timeout},
		"redis":  {out.Redis.Timeout, defaultBrokerTimeout, &in.Redis.Timeout},
		"nats":   {out.NATS.Timeout, defaultBrokerTimeout, &in.NATS.Timeout},
		"kafka":  {out.Kafka.Timeout, defaultBrokerTimeout, &in.Kafka.Timeout},
		"amqp":   {out.AMQP.Timeout, defaultBrokerTimeout, &in.AMQP.Timeout},
		"mqtt":   {out.MQTT.Timeout, defaultBrokerTimeout, &in.MQTT.Timeout},
		"pubsub": {out.PubSub.Timeout, defaultBrokerTimeout, &in.PubSub.Timeout},
	} {
		if c.got != c.want {
			t.Errorf("%s: timeout %v, want the default %v", name, c.got, c.want)
		}
		if *c.given != 0 {
			t.Errorf("%s: the caller's timeout was changed to %v", name, *c.given)
		}
	}
	if out.Redis.DedupeWindow != defaultRedisDedupe || in.Redis.DedupeWindow != 0 {
		t.Errorf("redis dedupe window %v (caller's %v), want %v on the copy only", out.Redis.DedupeWindow, in.Redis.DedupeWindow, defaultRedisDedupe)
	}
	if out.MQTT.ClientID == "" || in.MQTT.ClientID != "" {
		t.Errorf("mqtt client id %q (caller's %q), want one made on the copy only", out.MQTT.ClientID, in.MQTT.ClientID)
	}

	given := SinkConfig{Name: "k", NATS: &NATSSinkConfig{Timeout: time.Second}}.withDefaults(src)
	if given.NATS.Timeout != time.Second {
		t.Errorf("a given timeout became %v, want it kept (1s)", given.NATS.Timeout)
	}
	none := SinkConfig{Name: "k", Discard: &DiscardSinkConfig{}}.withDefaults(src)
	if none.HTTP != nil || none.Redis != nil || none.NATS != nil || none.Kafka != nil || none.AMQP != nil || none.MQTT != nil || none.PubSub != nil {
		t.Errorf("a discard sink got broker settings: %+v", none)
	}
}
