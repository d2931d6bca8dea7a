package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/longhook/longhook/webhook"
)

// collector counts what a broker holds, by dedupe key, with the headers
// of the last message seen per key.
type collector struct {
	mu      sync.Mutex
	ids     map[string]int
	headers map[string]map[string]string
}

func newCollector() *collector {
	return &collector{ids: map[string]int{}, headers: map[string]map[string]string{}}
}

func (c *collector) add(id string, h map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids[id]++
	c.headers[id] = h
}

func (c *collector) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.ids))
	for k, v := range c.ids {
		out[k] = v
	}
	return out
}

func (c *collector) header(id string) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.headers[id]
}

// startKafka starts franz-go's in-process Kafka (kfake) with topic, on
// port (0: any); no Kafka broker runs on this machine.
func startKafka(t testing.TB, port int, topic string) *kfake.Cluster {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(1, topic)}
	if port != 0 {
		opts = append(opts, kfake.Ports(port))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// consumeKafka reads topic from the start into a collector until cleanup.
func consumeKafka(t testing.TB, addrs []string, topic string) *collector {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				h := map[string]string{}
				for _, x := range r.Headers {
					h[x.Key] = string(x.Value)
				}
				col.add(string(r.Key), h)
			})
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cl.Close()
	})
	return col
}

// testAMQP returns LONGHOOK_TEST_AMQP_URL or skips.
func testAMQP(t testing.TB) string {
	t.Helper()
	url := os.Getenv("LONGHOOK_TEST_AMQP_URL")
	if url == "" {
		t.Skip("LONGHOOK_TEST_AMQP_URL not set: no RabbitMQ to test against")
	}
	return url
}

// consumeAMQP declares queue (durable) and consumes it into a collector;
// the queue is deleted at cleanup.
func consumeAMQP(t testing.TB, url, queue string) *collector {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("amqp: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	msgs, err := ch.Consume(queue, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range msgs {
			h := map[string]string{"delivery-mode": strconv.Itoa(int(m.DeliveryMode))}
			for k, v := range m.Headers {
				h[k] = fmt.Sprint(v)
			}
			col.add(m.MessageId, h)
		}
	}()
	t.Cleanup(func() {
		_, _ = ch.QueueDelete(queue, false, false, false)
		_ = conn.Close()
		<-done
	})
	return col
}

// consumeMQTT subscribes to topic with QoS 1 and collects envelopes by
// their longhook-event-id.
func consumeMQTT(t testing.TB, url, topic string) *collector {
	t.Helper()
	col := newCollector()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("longhook-test-" + suffix(t)[len(suffix(t))-8:]))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt connect: %v", tok.Error())
	}
	tok := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		var env mqttEnvelope
		if err := json.Unmarshal(m.Payload(), &env); err != nil {
			col.add("not-an-envelope", nil)
			return
		}
		col.add(env.Headers[HeaderEventID], env.Headers)
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return col
}

// unusedPort returns a loopback port nothing listens on (for now).
func unusedPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestBrokerSinks sends events through Kafka (kfake, in process), RabbitMQ
// and Mosquitto (real brokers) sinks; each broker holds every event,
// keyed by its dedupe key, with the webhook headers. The Kafka broker is
// down at first: the HTTP sink gets everything meanwhile, and Kafka
// catches up once its broker starts.
func TestBrokerSinks(t *testing.T) {
	t.Parallel()
	name := suffix(t)
	kafkaPort := unusedPort(t)
	var sinks []SinkConfig
	rec := newRecorder(t)
	sinks = append(sinks,
		SinkConfig{Name: "http", HTTP: &HTTPSinkConfig{URL: rec.srv.URL}},
		SinkConfig{Name: "kafka", Kafka: &KafkaSinkConfig{Brokers: []string{fmt.Sprintf("127.0.0.1:%d", kafkaPort)}, Topic: "webhooks", Timeout: time.Second},
			Retry: RetryConfig{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond}},
	)
	var amqpCol, mqttCol *collector
	if url := os.Getenv("LONGHOOK_TEST_AMQP_URL"); url != "" {
		queue := "longhook.test." + name
		amqpCol = consumeAMQP(t, url, queue)
		sinks = append(sinks, SinkConfig{Name: "amqp", AMQP: &AMQPSinkConfig{URL: url, RoutingKey: queue}})
	} else {
		t.Log("LONGHOOK_TEST_AMQP_URL not set: the RabbitMQ sink is not tested")
	}
	if url := os.Getenv("LONGHOOK_TEST_MQTT_URL"); url != "" {
		topic := "longhook/test/" + name
		mqttCol = consumeMQTT(t, url, topic)
		sinks = append(sinks, SinkConfig{Name: "mqtt", MQTT: &MQTTSinkConfig{URL: url, Topic: topic, Envelope: true, ClientID: "lh-" + name[len(name)-8:]}})
	} else {
		t.Log("LONGHOOK_TEST_MQTT_URL not set: the MQTT sink is not tested")
	}
	secretText, secret := mustSecret(t)
	gw := startGateway(t, Config{Sources: []SourceConfig{{Name: "src", Verify: VerifyConfig{HMACSecrets: []string{secretText}}, Sinks: sinks}}})
	const n = 40
	for i := range n {
		id := fmt.Sprintf("msg_broker_%d", i)
		if s, b := post(t, gw.srv.Client(), gw.srv.URL+"/hooks/src", secret, id, time.Now(), testBody(i)); s != 200 {
			t.Fatalf("post: %d %s", s, b)
		}
	}
	waitFor(t, 20*time.Second, "the http sink, while Kafka is down", func() bool { return rec.count() == n })

	kc := startKafka(t, kafkaPort, "webhooks")
	kafkaCol := consumeKafka(t, kc.ListenAddrs(), "webhooks")
	cols := map[string]*collector{"kafka": kafkaCol, "amqp": amqpCol, "mqtt": mqttCol}
	for broker, col := range cols {
		if col == nil {
			continue
		}
		waitFor(t, 30*time.Second, broker+" to hold every event", func() bool { return len(col.snapshot()) == n })
	}
	idle(t, gw.Gateway)
	for broker, col := range cols {
		if col == nil {
			continue
		}
		// At least once: a produce that timed out while the broker was
		// down may have been written too (none of these brokers dedupes
		// by id); consumers drop repeats by the key.
		for id, k := range col.snapshot() {
			if k > 1 {
				t.Logf("%s: %s held %d times", broker, id, k)
			}
		}
		h := col.header("msg_broker_7")
		if h["webhook-id"] != "msg_broker_7" || h["webhook-signature"] == "" || h[HeaderSource] != "src" || h[HeaderEventType] != "batch.succeeded" {
			t.Errorf("%s: headers of msg_broker_7: %v", broker, h)
		}
		if broker == "amqp" && h["delivery-mode"] != "2" {
			t.Errorf("amqp: delivery mode %s, want 2 (persistent)", h["delivery-mode"])
		}
	}
}

// An AMQP publish that no queue takes is a failed forward (it stays in
// the retry table), not a confirmed one.
func TestAMQPUnroutableIsAFailure(t *testing.T) {
	t.Parallel()
	url := testAMQP(t)
	secretText, secret := mustSecret(t)
	gw := startGateway(t, Config{Sources: []SourceConfig{{Name: "src", Verify: VerifyConfig{HMACSecrets: []string{secretText}},
		Sinks: []SinkConfig{{Name: "amqp", AMQP: &AMQPSinkConfig{URL: url, Exchange: "amq.direct", RoutingKey: "longhook.nobody." + suffix(t)},
			Retry: RetryConfig{Initial: time.Hour, Max: time.Hour}}}}}})
	if s, b := post(t, gw.srv.Client(), gw.srv.URL+"/hooks/src", secret, "msg_unroutable", time.Now(), testBody(1)); s != 200 {
		t.Fatalf("post: %d %s", s, b)
	}
	waitFor(t, 20*time.Second, "a pending retry", func() bool {
		p, err := gw.inbox.PendingRetries(context.Background())
		return err == nil && p["src/amqp"] == 1
	})
}

// TestPubSubSink publishes through the official client to its in-process
// server (pstest; Pub/Sub cannot run on this machine): every event is
// stored once, with the headers as attributes and the ordering key.
func TestPubSubSink(t *testing.T) {
	t.Parallel()
	srv := pstest.NewServer()
	t.Cleanup(func() { _ = srv.Close() })
	if _, err := srv.GServer.CreateTopic(context.Background(), &pubsubpb.Topic{Name: "projects/lh-test/topics/webhooks"}); err != nil {
		t.Fatal(err)
	}
	secretText, secret := mustSecret(t)
	gw := startGateway(t, Config{Sources: []SourceConfig{{Name: "src", Verify: VerifyConfig{HMACSecrets: []string{secretText}},
		Sinks: []SinkConfig{
			{Name: "pubsub", PubSub: &PubSubSinkConfig{Project: "lh-test", Topic: "webhooks", OrderingKey: "{source}", Emulator: srv.Addr}},
			{Name: "missing-topic", PubSub: &PubSubSinkConfig{Project: "lh-test", Topic: "nope", Emulator: srv.Addr},
				Retry: RetryConfig{Initial: time.Hour, Max: time.Hour}},
		}}}})
	const n = 30
	for i := range n {
		if s, b := post(t, gw.srv.Client(), gw.srv.URL+"/hooks/src", secret, fmt.Sprintf("msg_ps_%d", i), time.Now(), testBody(i)); s != 200 {
			t.Fatalf("post: %d %s", s, b)
		}
	}
	waitFor(t, 20*time.Second, "every event in Pub/Sub", func() bool { return len(srv.Messages()) >= n })
	// A topic that does not exist fails its forwards; the other sink is
	// unaffected.
	waitFor(t, 20*time.Second, "the missing topic's retries", func() bool {
		p, err := gw.inbox.PendingRetries(context.Background())
		return err == nil && p["src/missing-topic"] == n
	})
	seen := map[string]int{}
	for _, m := range srv.Messages() {
		id := m.Attributes[HeaderEventID]
		seen[id]++
		if m.Attributes["webhook-id"] != id || m.Attributes["webhook-signature"] == "" || m.Attributes[HeaderSource] != "src" ||
			m.OrderingKey != "src" || !strings.Contains(string(m.Data), "batch.succeeded") {
			t.Errorf("message %s: attributes %v, ordering key %q", m.ID, m.Attributes, m.OrderingKey)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct events in Pub/Sub, want %d", len(seen), n)
	}
}

// TestPubSubAttributesWithinLimits: Pub/Sub refuses a message with an
// attribute value over 1,024 bytes (pstest does not check), and a
// dynamic webhook's webhook-signature — a JWT carrying the event — is
// usually longer. Such a header is left out of the attributes, so the
// event is published (with its longhook-* attributes) instead of failing
// every forward until it is given up.
func TestPubSubAttributesWithinLimits(t *testing.T) {
	t.Parallel()
	srv := pstest.NewServer()
	t.Cleanup(func() { _ = srv.Close() })
	if _, err := srv.GServer.CreateTopic(context.Background(), &pubsubpb.Topic{Name: "projects/lh-test/topics/long"}); err != nil {
		t.Fatal(err)
	}
	secretText, secret := mustSecret(t)
	gw := startGateway(t, Config{Sources: []SourceConfig{{Name: "src", Verify: VerifyConfig{HMACSecrets: []string{secretText}},
		Sinks: []SinkConfig{{Name: "pubsub", PubSub: &PubSubSinkConfig{Project: "lh-test", Topic: "long", Emulator: srv.Addr}}}}}})
	// A signature header of 40 entries (1.8 KB; the last one matches) and
	// an event type of 1,100 characters.
	const id = "msg_pubsub_long"
	typ := strings.Repeat("t", 1100)
	body := []byte(`{"type":"` + typ + `","data":{}}`)
	ts := time.Now()
	sig := strings.Repeat("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= ", 39) + webhook.Sign(secret, id, ts, body)
	req, _ := http.NewRequest(http.MethodPost, gw.srv.URL+"/hooks/src", bytes.NewReader(body))
	req.Header.Set(webhook.HeaderID, id)
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, sig)
	resp, err := gw.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("post: %d", resp.StatusCode)
	}
	waitFor(t, 20*time.Second, "the event in Pub/Sub", func() bool { return len(srv.Messages()) == 1 })
	m := srv.Messages()[0]
	for k, v := range m.Attributes {
		if len(k) > 256 || len(v) > 1024 {
			t.Errorf("attribute %q is %d bytes: Pub/Sub refuses values over 1,024 bytes", k, len(v))
		}
	}
	if m.Attributes[HeaderEventID] != id || m.Attributes["webhook-id"] != id || m.Attributes[HeaderSource] != "src" {
		t.Errorf("attributes %v: want the event id, webhook-id and source", m.Attributes)
	}
}

func TestBrokerSinkConfigErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		sink SinkConfig
		want string
	}{
		{SinkConfig{Kafka: &KafkaSinkConfig{Topic: "t"}}, "kafka: brokers and topic are required"},
		{SinkConfig{AMQP: &AMQPSinkConfig{URL: "http://x"}}, "amqp.url"},
		{SinkConfig{AMQP: &AMQPSinkConfig{URL: "amqp://u:hunter2@x/"}}, "routing_key"},
		{SinkConfig{MQTT: &MQTTSinkConfig{URL: "tcp://x:1883", Topic: "a/#"}}, "must be a literal topic"},
		{SinkConfig{MQTT: &MQTTSinkConfig{URL: "ftp://x", Topic: "a"}}, "mqtt.url"},
		{SinkConfig{PubSub: &PubSubSinkConfig{Project: "p"}}, "project and topic are required"},
		{SinkConfig{PubSub: &PubSubSinkConfig{Project: "p", Topic: "t", OrderingKey: "{tenant}"}}, "ordering_key"},
		{SinkConfig{Kafka: &KafkaSinkConfig{Brokers: []string{"x"}, Topic: "t"}, MQTT: &MQTTSinkConfig{URL: "tcp://x", Topic: "a"}}, "set exactly one of"},
	}
	for _, c := range cases {
		c.sink.Name = "k"
		cfg := Config{Sources: []SourceConfig{{Name: "s", Verify: VerifyConfig{HMACSecrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
			Sinks: []SinkConfig{c.sink}}}}.withDefaults()
		err := cfg.validate()
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%+v: err = %v, want %q", c.sink, err, c.want)
		}
	}
}

// Two gateways with the same source and sink names on one broker (two
// deployments, a blue/green switch) each keep their MQTT connection: the
// default client id ends in a random part. It was "longhook-<source>-<sink>"
// for both, and a broker closes a client's connection when another connects
// with its id: the two took it from each other every few seconds, and
// their forwards failed "not connected" in between (seen with Mosquitto).
func TestMQTTDefaultClientIDs(t *testing.T) {
	t.Parallel()
	url := os.Getenv("LONGHOOK_TEST_MQTT_URL")
	if url == "" {
		t.Skip("LONGHOOK_TEST_MQTT_URL not set: the MQTT sink is not tested")
	}
	topic := "longhook/test/" + suffix(t)
	var sinks [2]*mqttSink
	for i := range sinks {
		cfg := Config{Sources: []SourceConfig{{Name: "src", Sinks: []SinkConfig{{Name: "mqtt", MQTT: &MQTTSinkConfig{URL: url, Topic: topic}}}}}}.withDefaults()
		c := *cfg.Sources[0].Sinks[0].MQTT
		if !strings.HasPrefix(c.ClientID, "longhook-src-mqtt-") {
			t.Fatalf("default client id %q, want longhook-src-mqtt-…", c.ClientID)
		}
		s, err := newMQTTSink(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		sinks[i] = s
	}
	if sinks[0].c.ClientID == sinks[1].c.ClientID {
		t.Fatalf("two starts share the client id %q", sinks[0].c.ClientID)
	}
	waitFor(t, 20*time.Second, "both sinks connected at once", func() bool {
		return sinks[0].client.IsConnectionOpen() && sinks[1].client.IsConnectionOpen()
	})
	for i := range 20 {
		e := &Event{Source: "src", WebhookID: fmt.Sprintf("msg_mqtt_%d", i), Body: []byte(`{}`)}
		if err := sinks[i%2].Send(context.Background(), e); err != nil {
			t.Fatalf("send %d through sink %d: %v", i, i%2, err)
		}
	}
}
