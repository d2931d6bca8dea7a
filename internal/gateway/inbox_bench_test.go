package gateway

import (
	"bytes"
	"context"
	"fmt"
	"github.com/longhook/longhook/internal/gateway/inbox/postgres"
	"github.com/longhook/longhook/internal/gateway/inbox/sqlite"
	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/procstat"
	"github.com/longhook/longhook/webhook"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAccept measures the inbox alone: concurrent Accepts through
// group commit. cpu-ns/op is process CPU per event, robust to a busy box.
func BenchmarkAccept(b *testing.B) {
	in, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "x.db"), "NORMAL")
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	benchAccept(b, in)
	commits, ops := in.CommitStats()
	b.ReportMetric(float64(ops)/float64(max(commits, 1)), "ops/commit")
}

// BenchmarkPostgresAccept is BenchmarkAccept on the PostgreSQL inbox
// (LONGHOOK_TEST_POSTGRES_URL, a schema of its own).
func BenchmarkPostgresAccept(b *testing.B) {
	dbURL := pgtest.URL(b)
	in, err := postgres.Open(context.Background(), dbURL, postgres.Options{Schema: pgtest.Schema(b, dbURL, "lh_gw_test_"), MaxConns: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	benchAccept(b, in)
	commits, ops := in.CommitStats()
	b.ReportMetric(float64(ops)/float64(max(commits, 1)), "ops/commit")
}

func benchAccept(b *testing.B, in Inbox) {
	body := testBody(1)
	body = append(body, make([]byte, 400)...)
	h := http.Header{"Webhook-Id": {"msg_x"}, "Webhook-Timestamp": {"1700000000"}, "Webhook-Signature": {"v1,4fDzhQod1CQw83ly0LwffvNaCwTQr1oNJ+Z6Fe+/6L4="}, "Content-Type": {"application/json"}}
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	c0 := procstat.CPUTime()
	defer func() { b.ReportMetric(float64((procstat.CPUTime()-c0).Nanoseconds())/float64(b.N), "cpu-ns/op") }()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			now := time.Now()
			if _, err := in.Accept(context.Background(), AcceptParams{Source: "s", WebhookID: fmt.Sprintf("msg_%d", i), Type: "t", Header: h, Body: body, ReceivedAt: now, ExpireAt: now.Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIntakeHandler measures the intake handler without a network:
// verify, dedupe, durable write, log line, and forwarding to a discard sink.
func BenchmarkIntakeHandler(b *testing.B) {
	secretText, secret := mustSecret(b)
	g, err := NewGateway(context.Background(), Config{DataDir: b.TempDir(), Sources: []SourceConfig{{
		Name: "s", Verify: VerifyConfig{HMACSecrets: []string{secretText}},
		Sinks: []SinkConfig{{Name: "d", Discard: &DiscardSinkConfig{}, Concurrency: 64}},
	}}}, WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done; g.Close() }()
	h := g.Handler()
	body := benchBody(512)
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	c0 := procstat.CPUTime()
	defer func() { b.ReportMetric(float64((procstat.CPUTime()-c0).Nanoseconds())/float64(b.N), "cpu-ns/op") }()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("msg_%d", n.Add(1))
			now := time.Now()
			req := httptest.NewRequest(http.MethodPost, "/hooks/s", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(webhook.HeaderID, id)
			req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
			req.Header.Set(webhook.HeaderSignature, webhook.Sign(secret, id, now, body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	})
}
