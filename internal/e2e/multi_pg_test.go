package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
)

// newTestDatabase creates a database lh_e2e_<random> on the server of
// adminURL and returns its URL. The database is dropped WITH (FORCE) when
// the test ends; call it before starting the servers that use it, so that
// their kill9 cleanups run first.
func newTestDatabase(t testing.TB, adminURL string) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("lh_e2e_%x", b)
	if err := pgtest.Exec(adminURL, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := pgtest.Exec(adminURL, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatalf("LONGHOOK_TEST_POSTGRES_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// connectPG opens a connection to dbURL, closed when the test ends. A
// *pgx.Conn is not safe for concurrent use: give each goroutine its own.
func connectPG(t testing.TB, dbURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect %s: %v", dbURL, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// queryInt runs a query that returns one integer.
func queryInt(t testing.TB, conn *pgx.Conn, sql string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// startCluster starts n `longhook serve --dev` processes on one PostgreSQL
// database, all at once, so that they race to migrate and to bootstrap
// the default project. Each has its own data dir; they share
// LONGHOOK_MASTER_KEY (32 random bytes) and LONGHOOK_BOOTSTRAP_API_KEY, so
// every instance decrypts every secret and accepts the same key. They are
// killed when the test ends.
func startCluster(t testing.TB, n int, dbURL string, flags ...string) []*serveProc {
	t.Helper()
	mk := make([]byte, 32)
	if _, err := rand.Read(mk); err != nil {
		t.Fatal(err)
	}
	cfg := serveConfig{
		dev:          true,
		bootstrapKey: randomKey(t),
		flags:        append([]string{"--database-url", dbURL, "--migrate"}, flags...),
		env:          []string{"LONGHOOK_MASTER_KEY=" + base64.StdEncoding.EncodeToString(mk)},
	}
	procs := make([]*serveProc, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range procs {
		s := &serveProc{t: t, cfg: cfg, dataDir: t.TempDir(), APIKey: cfg.bootstrapKey}
		t.Cleanup(s.kill9)
		procs[i] = s
		wg.Go(func() { errs[i] = s.tryStart("127.0.0.1:0") })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start instance %d: %v\nstderr:\n%s", i, err, procs[i].Logs())
		}
	}
	return procs
}

// stopGracefully sends SIGTERM and waits until serve has exited: HTTP
// stops, claiming stops and attempts in flight finish (soft stop), so
// nothing reaches a receiver afterwards.
func stopGracefully(t testing.TB, s *serveProc) {
	t.Helper()
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil || !running(s) {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not exit within 30 s of SIGTERM\nstderr:\n%s", s.Logs())
	}
}

// running reports whether s's current process has not exited.
func running(s *serveProc) bool {
	s.mu.Lock()
	exited := s.exited
	s.mu.Unlock()
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// healthz returns nil if the instance behind c answers GET /healthz with 200.
func healthz(ctx context.Context, c *apiClient) error {
	status, raw, err := c.do(ctx, "GET", "/healthz", nil, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET /healthz: status %d: %s", status, raw)
	}
	return nil
}

// spreadPublisher publishes events numbered by a seq (data.seq) over
// several instances, round-robin, with an idempotency key per seq: a
// publish whose outcome is unknown (the instance died, the database
// restarted) is retried on the next instance without creating a second
// event, so the receivers' duplicates are the engine's alone.
type spreadPublisher struct {
	clients  []*apiClient
	prefix   string        // idempotency keys are prefix + seq
	accepted []atomic.Bool // seq → a publish of it got a 2xx
	next     atomic.Uint64
	// nAccepted counts accepted events, retries failed publish calls;
	// perClient counts accepted calls per instance.
	nAccepted, retries atomic.Int64
	perClient          []atomic.Int64
	progress           chan struct{} // capacity 1: "more were accepted"
}

// newSpreadPublisher publishes seqs 0..n-1 through clients.
func newSpreadPublisher(prefix string, n int, clients ...*apiClient) *spreadPublisher {
	return &spreadPublisher{
		clients: clients, prefix: prefix, accepted: make([]atomic.Bool, n),
		perClient: make([]atomic.Int64, len(clients)), progress: make(chan struct{}, 1),
	}
}

// publish publishes seqs start..start+n-1 in one call (POST /events for
// one, events:batchPublish for more), moving on to the next instance until
// one accepts them or ctx ends.
func (p *spreadPublisher) publish(ctx context.Context, start, n int) error {
	for {
		i := int(p.next.Add(1) % uint64(len(p.clients)))
		ok, err := publishIdempotent(ctx, p.clients[i], p.prefix, start, n)
		if err != nil {
			return err
		}
		if ok {
			for seq := start; seq < start+n; seq++ {
				p.accepted[seq].Store(true)
			}
			p.nAccepted.Add(int64(n))
			p.perClient[i].Add(1)
			select {
			case p.progress <- struct{}{}:
			default:
			}
			return nil
		}
		p.retries.Add(1)
		if !core.Sleep(ctx, 5*time.Millisecond) {
			return fmt.Errorf("publish of seq %d..%d not accepted before the deadline", start, start+n-1)
		}
	}
}

// waitAccepted waits until at least n events were accepted or ctx ends.
func (p *spreadPublisher) waitAccepted(ctx context.Context, n int64) bool {
	for p.nAccepted.Load() < n {
		select {
		case <-p.progress:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// publishIdempotent publishes events seq start..start+n-1, each with
// idempotency_key prefix+seq. It reports whether serve accepted them (2xx
// with one id per event); transport errors, 429 and 5xx mean "not
// accepted, try again"; any other answer is an error.
func publishIdempotent(ctx context.Context, c *apiClient, prefix string, start, n int) (bool, error) {
	events := make([]map[string]any, n)
	for i := range n {
		seq := start + i
		events[i] = map[string]any{
			"type":            "batch.succeeded",
			"data":            map[string]any{"id": "batches/" + prefix + strconv.Itoa(seq), "seq": seq},
			"idempotency_key": prefix + strconv.Itoa(seq),
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return tryPublish(ctx, rctx, c, events)
}

// waitDelivered polls until every accepted seq has reached each receiver,
// or timeout passes; it returns the seqs still missing per receiver.
func waitDelivered(timeout time.Duration, accepted []atomic.Bool, rcvs ...*seqReceiver) [][]int {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		missing := make([][]int, len(rcvs))
		done := true
		for i, r := range rcvs {
			missing[i] = r.missing(accepted)
			done = done && len(missing[i]) == 0
		}
		if done || time.Now().After(deadline) {
			return missing
		}
		<-tick.C
	}
}

// deliveryStates returns the count of deliveries per status.
func deliveryStates(t testing.TB, conn *pgx.Conn) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := conn.Query(ctx, `SELECT status, count(*) FROM deliveries GROUP BY status`)
	if err != nil {
		t.Fatalf("count deliveries: %v", err)
	}
	states := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatalf("count deliveries: %v", err)
		}
		states[s] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("count deliveries: %v", err)
	}
	return states
}
