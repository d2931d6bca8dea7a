package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// gatewayProc is a running `longhook gateway` subprocess.
type gatewayProc struct {
	// URL is the gateway's base URL, e.g. http://127.0.0.1:4242.
	URL    string
	stderr syncBuffer // the logs
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has been reaped
	args   []string      // extra command-line flags
	env    []string      // extra environment variables
}

// gatewayListenLine is the gateway's "ready" line on stdout; it prints the
// bound address, not a URL.
var gatewayListenLine = regexp.MustCompile(`^longhook gateway listening on (\S+)$`)

// startGateway starts `longhook gateway` on a fresh data dir. config
// renders the YAML config for the gateway's future base URL: the sources'
// URLs (a JWKS audience) must be known before the gateway starts, so a free
// port is picked first, and picked again if another process takes it in
// between. The gateway is killed when the test ends.
func startGateway(t testing.TB, config func(baseURL string) string) *gatewayProc {
	t.Helper()
	return startGatewayWith(t, "http", config)
}

// startGatewayWith is startGateway with a URL scheme (https when args
// carry TLS flags) and extra command-line flags.
func startGatewayWith(t testing.TB, scheme string, config func(baseURL string) string, args ...string) *gatewayProc {
	t.Helper()
	return startGatewayEnv(t, nil, scheme, config, args...)
}

// startGatewayEnv is startGatewayWith with extra environment variables.
func startGatewayEnv(t testing.TB, env []string, scheme string, config func(baseURL string) string, args ...string) *gatewayProc {
	t.Helper()
	dir := t.TempDir()
	for try := 1; ; try++ {
		addr := freeAddr(t)
		path := filepath.Join(dir, "gateway.yaml")
		if err := os.WriteFile(path, []byte(config(scheme+"://"+addr)), 0o600); err != nil {
			t.Fatal(err)
		}
		g := &gatewayProc{URL: scheme + "://" + addr, args: args, env: env}
		err := g.start(path, filepath.Join(dir, "data"), addr)
		if err == nil {
			t.Cleanup(g.kill9)
			return g
		}
		if try < 5 && strings.Contains(g.stderr.String(), "address already in use") {
			continue
		}
		t.Fatalf("start gateway: %v\nstderr:\n%s", err, g.stderr.String())
	}
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// start launches the gateway and waits for its listening line; on error
// the process has been reaped.
func (g *gatewayProc) start(config, dataDir, addr string) error {
	cmd := exec.Command(longhookBin, append([]string{"gateway", "--config", config, "--data-dir", dataDir, "--addr", addr}, g.args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LONGHOOK_") { // they would change the gateway's flags
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, g.env...)
	cmd.Stderr = &g.stderr
	setPdeathsig(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	ready := make(chan string, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := gatewayListenLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case ready <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	g.cmd, g.exited = cmd, make(chan struct{})
	go func() {
		<-readDone // Wait closes the pipe: read it to the end first
		_ = cmd.Wait()
		close(g.exited)
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case got := <-ready:
		if got != addr {
			g.kill9()
			return fmt.Errorf("gateway listens on %s, want %s", got, addr)
		}
		return nil
	case <-g.exited:
		return fmt.Errorf("gateway exited before listening (%v)", cmd.ProcessState)
	case <-timer.C:
		g.kill9()
		return fmt.Errorf("no listening line within %v", startTimeout)
	}
}

// kill9 sends SIGKILL and waits until the process is reaped.
func (g *gatewayProc) kill9() {
	if g.cmd == nil {
		return
	}
	_ = g.cmd.Process.Kill()
	<-g.exited
}

// metric returns the value of the series name{labels} on the gateway's
// /metrics (0 when the series is absent).
func (g *gatewayProc) metric(t testing.TB, hc *http.Client, name string, labels map[string]string) float64 {
	t.Helper()
	resp, err := hc.Get(g.URL + "/metrics")
	if err != nil {
		t.Fatalf("gateway /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("gateway /metrics: status %d, %v", resp.StatusCode, err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		n, rawLabels, _ := strings.Cut(strings.TrimSuffix(series, "}"), "{")
		if n != name || !labelsMatch(rawLabels, labels) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			t.Fatalf("gateway /metrics: %q: %v", line, err)
		}
		return v
	}
	return 0
}

// labelsMatch reports whether the Prometheus label list raw (a="x",b="y")
// holds exactly want.
func labelsMatch(raw string, want map[string]string) bool {
	got := map[string]string{}
	for _, kv := range strings.Split(raw, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			got[k] = strings.Trim(v, `"`)
		}
	}
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// brokers are the Redis and NATS JetStream servers of
// LONGHOOK_TEST_REDIS_URL and LONGHOOK_TEST_NATS_URL.
type brokers struct {
	redisURL, natsURL string
	rdb               *redis.Client
	js                jetstream.JetStream
	prefix            string // unique per test: names of streams and subjects
}

// testBrokers connects to both brokers, or skips the test when either
// variable is unset.
func testBrokers(t testing.TB) *brokers {
	t.Helper()
	b := &brokers{redisURL: os.Getenv("LONGHOOK_TEST_REDIS_URL"), natsURL: os.Getenv("LONGHOOK_TEST_NATS_URL")}
	if b.redisURL == "" || b.natsURL == "" {
		t.Skip("LONGHOOK_TEST_REDIS_URL and LONGHOOK_TEST_NATS_URL must both be set (Redis and NATS JetStream to test against)")
	}
	opts, err := redis.ParseURL(b.redisURL)
	if err != nil {
		t.Fatalf("LONGHOOK_TEST_REDIS_URL: %v", err)
	}
	b.rdb = redis.NewClient(opts)
	t.Cleanup(func() { _ = b.rdb.Close() })
	nc, err := nats.Connect(b.natsURL)
	if err != nil {
		t.Fatalf("LONGHOOK_TEST_NATS_URL: %v", err)
	}
	t.Cleanup(nc.Close)
	if b.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	b.prefix = "longhook_e2e_" + hex.EncodeToString(r[:])
	return b
}

// redisStream returns a unique stream key for name, deleted (with any
// dedupe markers of the Redis sink) when the test ends.
func (b *brokers) redisStream(t testing.TB, name string) string {
	key := b.prefix + ":" + name
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		keys := []string{key}
		iter := b.rdb.Scan(ctx, 0, "{"+key+"}:*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := b.rdb.Del(ctx, keys...).Err(); err != nil {
			t.Errorf("redis cleanup of %s: %v", key, err)
		}
	})
	return key
}

// natsStream creates a JetStream stream capturing a unique subject for
// name, deleted when the test ends, and returns it with the subject.
// Its duplicate window is dup (0: the server's default of 2 minutes).
func (b *brokers) natsStream(t testing.TB, name string, dup time.Duration) (jetstream.Stream, string) {
	t.Helper()
	subject := strings.ReplaceAll(b.prefix, "_", ".") + "." + name
	streamName := strings.ToUpper(b.prefix + "_" + name)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: streamName, Subjects: []string{subject}, Duplicates: dup})
	if err != nil {
		t.Fatalf("create NATS stream %s: %v", streamName, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.js.DeleteStream(ctx, streamName); err != nil {
			t.Errorf("delete NATS stream %s: %v", streamName, err)
		}
	})
	return st, subject
}

// natsCount is the number of messages in st.
func natsCount(ctx context.Context, st jetstream.Stream) (int, error) {
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int(info.State.Msgs), nil
}

// sinkEntry is one event as a sink holds it.
type sinkEntry struct {
	WebhookID string // the webhook-id header (Redis: the webhook_id field)
	Source    string // the longhook-source header (Redis: the source field)
	DataID    string // data.id of the event envelope in the body
	Detail    string // anything inconsistent within the entry
}

// entryOf builds an entry from a forwarded body and the identifiers the
// sink carries; headerID is the webhook-id header where the sink has one
// next to its own id field.
func entryOf(webhookID, headerID, source string, body []byte) sinkEntry {
	e := sinkEntry{WebhookID: webhookID, Source: source}
	var env struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		e.Detail = fmt.Sprintf("body is not an event envelope: %v", err)
	}
	e.DataID = env.Data.ID
	if headerID != webhookID {
		e.Detail += fmt.Sprintf(" webhook-id header %q differs from the entry's id %q", headerID, webhookID)
	}
	return e
}

// receiverEntries returns what an HTTP sink target received.
func receiverEntries(r *receiver) []sinkEntry {
	var out []sinkEntry
	for _, rq := range r.requests() {
		id := rq.Header.Get("webhook-id")
		out = append(out, entryOf(id, id, rq.Header.Get("longhook-source"), rq.Body))
	}
	return out
}

// redisEntries reads a whole stream with XRANGE.
func redisEntries(ctx context.Context, rdb *redis.Client, stream string) ([]sinkEntry, error) {
	msgs, err := rdb.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		return nil, err
	}
	var out []sinkEntry
	for _, m := range msgs {
		id, _ := m.Values["webhook_id"].(string)
		src, _ := m.Values["source"].(string)
		body, _ := m.Values["body"].(string)
		raw, _ := m.Values["headers"].(string)
		var hdr map[string]string
		_ = json.Unmarshal([]byte(raw), &hdr)
		out = append(out, entryOf(id, hdr["webhook-id"], src, []byte(body)))
	}
	return out, nil
}

// natsEntries consumes every message of st with an ordered consumer.
func natsEntries(ctx context.Context, st jetstream.Stream) ([]sinkEntry, error) {
	want, err := natsCount(ctx, st)
	if err != nil {
		return nil, err
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	var out []sinkEntry
	for len(out) < want {
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("consumed %d of %d messages: %w", len(out), want, err)
		}
		batch, err := cons.Fetch(want-len(out), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return out, err
		}
		for m := range batch.Messages() {
			h := m.Headers()
			out = append(out, entryOf(h.Get(jetstream.MsgIDHeader), h.Get("webhook-id"), h.Get("longhook-source"), m.Data()))
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return out, err
		}
	}
	return out, nil
}
