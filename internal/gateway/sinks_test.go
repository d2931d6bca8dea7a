package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// suffix makes per-test stream and subject names.
func suffix(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())) + "_" + hex.EncodeToString(b[:])
}

// testRedis returns a client for LONGHOOK_TEST_REDIS_URL or skips.
func testRedis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	url := os.Getenv("LONGHOOK_TEST_REDIS_URL")
	if url == "" {
		t.Skip("LONGHOOK_TEST_REDIS_URL not set: no Redis to test against")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("LONGHOOK_TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c, url
}

// testJetStream returns a JetStream context for LONGHOOK_TEST_NATS_URL
// and a fresh stream capturing subject, or skips.
func testJetStream(t testing.TB, subject string) (jetstream.Stream, string) {
	t.Helper()
	url := os.Getenv("LONGHOOK_TEST_NATS_URL")
	if url == "" {
		t.Skip("LONGHOOK_TEST_NATS_URL not set: no NATS JetStream to test against")
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	name := strings.ToUpper(strings.ReplaceAll(subject, ".", "_"))
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Duplicates: 10 * time.Minute})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	t.Cleanup(func() {
		_ = js.DeleteStream(context.Background(), name)
		nc.Close()
	})
	return st, url
}

// idle waits until every forwarder has persisted a cursor at the end of
// the log, with nothing in flight and no retry pending: nothing more will
// be forwarded.
func idle(t testing.TB, g *Gateway) {
	t.Helper()
	waitFor(t, 20*time.Second, "forwarders to go idle", func() bool {
		last, err := g.inbox.LastSeq(context.Background())
		if err != nil {
			return false
		}
		p, _ := g.inbox.PendingRetries(context.Background())
		for _, f := range g.forwarders {
			f.mu.Lock()
			busy := len(f.first)+len(f.retrying) > 0
			f.mu.Unlock()
			if busy || f.persisted.Load() < last || p[f.id] > 0 {
				return false
			}
		}
		return true
	})
}

// Every sink receives every event exactly once per webhook-id, even when
// the sender redelivers each event several times, concurrently.
func TestSinksExactlyOnceWithRedelivery(t *testing.T) {
	t.Parallel()
	rdb, redisURL := testRedis(t)
	name := suffix(t)
	subject := "longhook.test." + name
	st, natsURL := testJetStream(t, subject)
	stream := "longhook:test:" + name
	t.Cleanup(func() {
		ctx := context.Background()
		_ = rdb.Del(ctx, stream).Err()
		iter := rdb.Scan(ctx, 0, "{"+stream+"}:*", 1000).Iterator()
		for iter.Next(ctx) {
			_ = rdb.Del(ctx, iter.Val()).Err()
		}
	})
	rec := newRecorder(t)
	secretText, secret := mustSecret(t)
	gw := startGateway(t, Config{Sources: []SourceConfig{{
		Name: "src", Verify: VerifyConfig{HMACSecrets: []string{secretText}},
		Sinks: []SinkConfig{
			{Name: "http", HTTP: &HTTPSinkConfig{URL: rec.srv.URL}},
			{Name: "redis", Redis: &RedisSinkConfig{URL: redisURL, Stream: stream}},
			{Name: "nats", NATS: &NATSSinkConfig{URL: natsURL, Subject: subject}},
		},
	}}})
	const n, copies = 200, 3
	var wg sync.WaitGroup
	for c := range copies {
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("msg_once_%d", i)
				if s, b := post(t, gw.srv.Client(), gw.srv.URL+"/hooks/src", secret, id, time.Now(), testBody(i)); s != 200 {
					t.Errorf("copy %d of %s: %d %s", c, id, s, b)
				}
			}()
		}
	}
	wg.Wait()
	idle(t, gw.Gateway)

	if got := rec.snapshot(); len(got) != n {
		t.Errorf("http sink: %d distinct ids, want %d", len(got), n)
	} else {
		for id, k := range got {
			if k != 1 {
				t.Errorf("http sink: %s delivered %d times", id, k)
			}
		}
	}

	ctx := context.Background()
	entries, err := rdb.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		id, _ := e.Values["webhook_id"].(string)
		if seen[id] {
			t.Errorf("redis: %s added twice", id)
		}
		seen[id] = true
		if e.Values["type"] != "batch.succeeded" || e.Values["source"] != "src" {
			t.Errorf("redis entry fields: %v", e.Values)
		}
		var hdr map[string]string
		if err := json.Unmarshal([]byte(e.Values["headers"].(string)), &hdr); err != nil || hdr["webhook-signature"] == "" {
			t.Errorf("redis headers field: %v %v", hdr, err)
		}
	}
	if len(entries) != n {
		t.Errorf("redis: %d entries, want %d", len(entries), n)
	}

	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n {
		t.Errorf("nats: %d messages, want %d", info.State.Msgs, n)
	}
	msg, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(msg.Header.Get("Nats-Msg-Id"), "msg_once_") || msg.Header.Get("webhook-signature") == "" ||
		msg.Header.Get(HeaderSource) != "src" {
		t.Errorf("nats headers: %v", msg.Header)
	}
}

// A Redis sink that is unreachable does not hold up the HTTP sink, and a
// NATS stream created by the sink on first use receives the events.
func TestBrokerSinkDownAndCreateStream(t *testing.T) {
	t.Parallel()
	_, natsURL := testJetStream(t, "longhook.unused."+suffix(t))
	subject := "longhook.test." + suffix(t)
	streamName := strings.ToUpper(strings.ReplaceAll(subject, ".", "_"))
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	t.Cleanup(func() {
		_ = js.DeleteStream(context.Background(), streamName)
		nc.Close()
	})
	rec := newRecorder(t)
	secretText, secret := mustSecret(t)
	gw := startGateway(t, Config{Sources: []SourceConfig{{
		Name: "src", Verify: VerifyConfig{HMACSecrets: []string{secretText}},
		Sinks: []SinkConfig{
			{Name: "http", HTTP: &HTTPSinkConfig{URL: rec.srv.URL}},
			{Name: "redis", Redis: &RedisSinkConfig{URL: "redis://127.0.0.1:1/0", Stream: "x", Timeout: 200 * time.Millisecond}},
			{Name: "nats", NATS: &NATSSinkConfig{URL: natsURL, Subject: subject, CreateStream: streamName}},
		},
	}}})
	for i := range 20 {
		if s, b := post(t, gw.srv.Client(), gw.srv.URL+"/hooks/src", secret, fmt.Sprintf("msg_down_%d", i), time.Now(), testBody(i)); s != 200 {
			t.Fatalf("post: %d %s", s, b)
		}
	}
	waitFor(t, 10*time.Second, "http sink", func() bool { return rec.count() == 20 })
	waitFor(t, 10*time.Second, "nats stream", func() bool {
		st, err := js.Stream(context.Background(), streamName)
		if err != nil {
			return false
		}
		info, err := st.Info(context.Background())
		return err == nil && info.State.Msgs == 20
	})
}
