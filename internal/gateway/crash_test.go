package gateway

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/pgtest"
)

// crashChildEnv makes the test binary run a gateway (RunGateway with the
// config named by LONGHOOK_GATEWAY_CONFIG) instead of the tests, so the
// crash test can SIGKILL a real process.
const crashChildEnv = "LONGHOOK_GATEWAY_TEST_CHILD"

func crashChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := RunGateway(ctx, nil, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type child struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan struct{}
}

func startChild(t *testing.T, configPath, base string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"=1", "LONGHOOK_GATEWAY_CONFIG="+configPath, "LONGHOOK_LOG_LEVEL=warn")
	c := &child{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = &lockedWriter{w: c.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	waitFor(t, 20*time.Second, "child gateway to be ready", func() bool {
		select {
		case <-c.done:
			t.Fatalf("child gateway exited: %s", c.stderr)
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return c
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// kill -9 under load: every event the gateway answered 2xx to reaches
// every sink after a restart (HTTP, Redis, Kafka, RabbitMQ), with either
// inbox.
func TestKill9UnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts gateway processes")
	}
	t.Parallel()
	// One after the other: each runs 16 senders and two gateway processes.
	t.Run("sqlite", func(t *testing.T) { testKill9UnderLoad(t, "") })
	t.Run("postgres", func(t *testing.T) {
		dbURL := pgtest.URL(t)
		// Dropped after the gateways are gone (cleanups run in reverse).
		schema := pgtest.Schema(t, dbURL, "lh_gw_test_")
		testKill9UnderLoad(t, pgtest.WithSearchPath(t, dbURL, schema))
		var n int64
		ctx := context.Background()
		c, err := pgx.Connect(ctx, pgtest.WithSearchPath(t, dbURL, schema))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if err := c.QueryRow(ctx, `SELECT count(*) FROM gateway_events`).Scan(&n); err != nil || n < 1500 {
			t.Errorf("the PostgreSQL inbox holds %d events (%v): was it used?", n, err)
		}
	})
}

// testKill9UnderLoad runs the crash test on database ("" for the default
// SQLite inbox in the data dir).
func testKill9UnderLoad(t *testing.T, database string) {
	// slow lags behind intake (its backlog is read from the log after the
	// restart); down fails until the restart (its events go through the
	// retry table).
	slow, down := newRecorder(t), newRecorder(t)
	slow.delay.Store(int64(5 * time.Millisecond))
	down.fail.Store(true)
	secretText, secret := mustSecret(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	sinks := fmt.Sprintf(`
      - name: slow
        http: {url: %q}
        concurrency: 4
      - name: down
        http: {url: %q}
        retry: {initial: 50ms, max: 200ms}`, slow.srv.URL, down.srv.URL)
	var checkRedis func() map[string]int
	if url := os.Getenv("LONGHOOK_TEST_REDIS_URL"); url != "" {
		rdb, _ := testRedis(t)
		stream := "longhook:test:" + suffix(t)
		t.Cleanup(func() { _ = rdb.Del(context.Background(), stream).Err() })
		sinks += fmt.Sprintf(`
      - name: redis
        redis: {url: %q, stream: %q, no_dedupe: true}`, url, stream)
		checkRedis = func() map[string]int {
			out := map[string]int{}
			entries, _ := rdb.XRange(context.Background(), stream, "-", "+").Result()
			for _, e := range entries {
				id, _ := e.Values["webhook_id"].(string)
				out[id]++
			}
			return out
		}
	}
	// Kafka lives in this process (kfake), outside the gateway that is
	// killed; RabbitMQ is the real broker.
	kc := startKafka(t, 0, "webhooks")
	sinks += fmt.Sprintf(`
      - name: kafka
        kafka: {brokers: [%q], topic: webhooks}`, kc.ListenAddrs()[0])
	brokers := map[string]*collector{"kafka": consumeKafka(t, kc.ListenAddrs(), "webhooks")}
	if url := os.Getenv("LONGHOOK_TEST_AMQP_URL"); url != "" {
		queue := "longhook.kill9." + suffix(t)
		brokers["rabbitmq"] = consumeAMQP(t, url, queue)
		sinks += fmt.Sprintf(`
      - name: amqp
        amqp: {url: %q, routing_key: %q}`, url, queue)
	}
	if database != "" {
		database = fmt.Sprintf("database: %q", database)
	}
	cfg := fmt.Sprintf(`
addr: %q
data_dir: %q
%s
sources:
  - name: load
    verify: {hmac_secrets: [%q]}
    sinks:%s
`, addr, dir, database, secretText, sinks)
	configPath := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(configPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	first := startChild(t, configPath, base)
	var mu sync.Mutex
	acked := map[string]bool{}
	var stop atomic.Bool
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	var next atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				i := next.Add(1)
				id := fmt.Sprintf("msg_kill_%d", i)
				if s, _ := post(t, client, base+"/hooks/load", secret, id, time.Now(), testBody(int(i))); s == 200 {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
			}
		}()
	}
	// Kill once the gateway has acknowledged a good number of events. The
	// deadline is generous: under the race detector on a loaded two-core
	// machine the intake can run at well under 100 events/s.
	waitFor(t, 90*time.Second, "load", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 1500
	})
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	want := len(acked)
	mu.Unlock()
	t.Logf("acknowledged %d events before kill -9; the slow sink had %d by then", want, slow.count())
	if slow.count() >= want {
		t.Log("the slow sink was not behind at the kill; the restart path was not exercised")
	}
	slow.delay.Store(0)
	down.fail.Store(false)

	second := startChild(t, configPath, base)
	for name, sink := range map[string]*recorder{"slow": slow, "down": down} {
		// On a timeout, say how far the sink got: a few events missing
		// for good (lost) and many still coming (slow) fail alike.
		missing := 0
		defer func() {
			if t.Failed() {
				t.Logf("the %s http sink lacked %d of the %d acknowledged events at the last look", name, missing, want)
			}
		}()
		waitFor(t, 90*time.Second, "every acknowledged event at the http sinks", func() bool {
			got := sink.snapshot()
			missing = 0
			for id := range acked {
				if got[id] == 0 {
					missing++
				}
			}
			return missing == 0
		})
	}
	if checkRedis != nil {
		waitFor(t, 90*time.Second, "every acknowledged event in redis", func() bool {
			got := checkRedis()
			for id := range acked {
				if got[id] == 0 {
					return false
				}
			}
			return true
		})
	}
	for name, col := range brokers {
		waitFor(t, 90*time.Second, "every acknowledged event in "+name, func() bool {
			got := col.snapshot()
			for id := range acked {
				if got[id] == 0 {
					return false
				}
			}
			return true
		})
	}
	// Graceful stop of the second process.
	_ = second.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-second.done:
	case <-time.After(15 * time.Second):
		t.Errorf("gateway did not stop on SIGTERM: %s", second.stderr)
	}
	if code := second.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("gateway exit code %d after SIGTERM: %s", code, second.stderr)
	}
}
