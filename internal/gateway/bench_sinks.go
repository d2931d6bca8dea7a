package gateway

import (
	"context"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/twmb/franz-go/pkg/kfake"
)

// benchSinkKinds are the sinks `longhook bench --gateway --sinks` knows.
var benchSinkKinds = []string{"http", "redis", "nats", "kafka", "amqp", "mqtt", "pubsub"}

// benchSinks holds the brokers the sink scenarios write to; in-process
// ones (Kafka: kfake, Pub/Sub: pstest) are started and stopped here.
type benchSinks struct {
	sinks map[string]SinkConfig // kind → sink of source "bench-sink-<kind>"
	order []string
	stops []func()
}

// parseBenchSinks reads --sinks: a comma list of KIND[=ADDRESS]. Without
// an address: Kafka and Pub/Sub run in process (no broker of either runs
// on a developer machine), RabbitMQ, Mosquitto, Redis and NATS are
// expected on their default local ports, and http is a local receiver
// answering 204.
func parseBenchSinks(spec string, serve func() (string, error)) (*benchSinks, error) {
	bs := &benchSinks{sinks: map[string]SinkConfig{}}
	if spec == "" {
		return bs, nil
	}
	for item := range strings.SplitSeq(spec, ",") {
		kind, addr, _ := strings.Cut(strings.TrimSpace(item), "=")
		var k SinkConfig
		switch kind {
		case "http":
			if addr == "" {
				u, err := serve()
				if err != nil {
					return nil, err
				}
				addr = u
			}
			k.HTTP = &HTTPSinkConfig{URL: addr}
		case "redis":
			k.Redis = &RedisSinkConfig{URL: or(addr, "redis://127.0.0.1:6379/0"), Stream: fmt.Sprintf("longhook:bench:%d", time.Now().UnixNano())}
		case "nats":
			subject := fmt.Sprintf("longhook.bench.%d", time.Now().UnixNano())
			k.NATS = &NATSSinkConfig{URL: or(addr, "nats://127.0.0.1:4222"), Subject: subject, CreateStream: strings.ReplaceAll(subject, ".", "_")}
		case "kafka":
			if addr == "" {
				c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "bench"))
				if err != nil {
					return nil, fmt.Errorf("bench: kafka: %w", err)
				}
				bs.stops = append(bs.stops, c.Close)
				addr = c.ListenAddrs()[0]
			}
			k.Kafka = &KafkaSinkConfig{Brokers: strings.Split(addr, ";"), Topic: "bench"}
		case "amqp":
			k.AMQP = &AMQPSinkConfig{URL: or(addr, "amqp://guest:guest@127.0.0.1:5672/"), RoutingKey: "longhook.bench", DeclareQueue: "longhook.bench"}
		case "mqtt":
			k.MQTT = &MQTTSinkConfig{URL: or(addr, "tcp://127.0.0.1:1883"), Topic: "longhook/bench", ClientID: fmt.Sprintf("longhook-bench-%d", time.Now().UnixNano())}
		case "pubsub":
			if addr == "" {
				srv := pstest.NewServer()
				bs.stops = append(bs.stops, func() { _ = srv.Close() })
				if _, err := srv.GServer.CreateTopic(context.Background(), &pubsubpb.Topic{Name: "projects/bench/topics/bench"}); err != nil {
					return nil, fmt.Errorf("bench: pubsub: %w", err)
				}
				addr = srv.Addr
			}
			k.PubSub = &PubSubSinkConfig{Project: "bench", Topic: "bench", Emulator: addr}
		default:
			return nil, fmt.Errorf("bench: --sinks: %q is not one of %s", kind, strings.Join(benchSinkKinds, ", "))
		}
		k.Name, k.Concurrency = kind, 64
		bs.sinks[kind] = k
		bs.order = append(bs.order, kind)
	}
	return bs, nil
}

func (bs *benchSinks) sources(secretText string) []SourceConfig {
	var out []SourceConfig
	for _, kind := range bs.order {
		out = append(out, SourceConfig{Name: "bench-sink-" + kind, Verify: VerifyConfig{HMACSecrets: []string{secretText}},
			Sinks: []SinkConfig{bs.sinks[kind]}})
	}
	return out
}

func (bs *benchSinks) close() {
	for _, stop := range bs.stops {
		stop()
	}
}

// driveSink sends reqs to the source of one sink and measures until the
// broker has confirmed every event (the sink's cursor is at the end of
// the log with no retry pending): intake and forwarding together.
func (b *bench) driveSink(ctx context.Context, kind string, reqs []benchReq) BenchResult {
	source := "bench-sink-" + kind
	start := time.Now()
	res := b.drive(ctx, "sink-"+kind, b.gwURL+"/hooks/"+source, reqs)
	var f *forwarder
	for _, x := range b.gw.forwarders {
		if x.source == source {
			f = x
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		last, err := b.gw.inbox.LastSeq(ctx)
		p, perr := b.gw.inbox.PendingRetries(ctx)
		if err == nil && perr == nil && f.persisted.Load() >= last && p[f.id] == 0 {
			break
		}
		time.Sleep(2 * time.Millisecond) // polling the cursor, which is written every 50 ms
	}
	if time.Now().After(deadline) {
		res.Errors = len(reqs)
	}
	elapsed := time.Since(start)
	res.Seconds = elapsed.Seconds()
	res.PerSecond = float64(len(reqs)) / elapsed.Seconds()
	return res
}
