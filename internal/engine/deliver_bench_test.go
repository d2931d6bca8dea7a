package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/publish"
	"github.com/longhook/longhook/internal/secretbox"
	"github.com/longhook/longhook/internal/store/sqlite"
	"github.com/longhook/longhook/webhook"
)

// countingStore counts the results the engine wrote, so the benchmark
// waits for every delivery to be final in the store, not just sent.
type countingStore struct {
	Store
	mu      sync.Mutex
	done    int64
	target  int64
	reached chan struct{}
}

func (s *countingStore) CompleteDeliveries(ctx context.Context, cs []core.Completion) error {
	err := s.Store.CompleteDeliveries(ctx, cs)
	if err == nil {
		s.mu.Lock()
		s.done += int64(len(cs))
		if s.reached != nil && s.done >= s.target {
			close(s.reached)
			s.reached = nil
		}
		s.mu.Unlock()
	}
	return err
}

// wait waits until n results in all have been written.
func (s *countingStore) wait(n int64) {
	s.mu.Lock()
	if s.done >= n {
		s.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	s.target, s.reached = n, ch
	s.mu.Unlock()
	<-ch
}

// BenchmarkDeliver runs the engine as serve does (direct hand-off from the
// publisher, metrics on, logs at error level) against a real SQLite store
// and a fasthttp receiver answering 204, and reports the cost per
// delivery (ns/op and allocs/op are per delivery, publish included):
// webhooks=1 is single-event publishes, webhooks=10 fan-out. b.N
// deliveries are published by 64 goroutines and the benchmark ends when
// all their results are written.
//
//	go test -run '^$' -bench Deliver -benchmem ./internal/engine
func BenchmarkDeliver(b *testing.B) {
	for _, hooks := range []int{1, 10} {
		b.Run("webhooks="+strconv.Itoa(hooks), func(b *testing.B) { benchDeliver(b, hooks) })
	}
}

func benchDeliver(b *testing.B, hooks int) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, b.TempDir()+"/longhook.db")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	box, err := secretbox.New(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	recvDone := serve204(ln)
	defer func() { ln.Close(); <-recvDone }()

	project := core.NewID()
	now := time.Now()
	if err := st.CreateProject(ctx, core.Project{ID: project, Name: "p", CreateTime: now}); err != nil {
		b.Fatal(err)
	}
	for i := range hooks {
		secret, _ := webhook.NewSecret()
		sealed, err := box.Seal([]byte(secret))
		if err != nil {
			b.Fatal(err)
		}
		w := &core.Webhook{ID: core.NewID(), ProjectID: project, URI: "http://" + ln.Addr().String() + "/hook/" + strconv.Itoa(i),
			SubscribedEvents: []string{"batch.succeeded"}, State: core.WebhookEnabled, CreateTime: now, UpdateTime: now,
			Secrets: []core.SigningSecret{{ID: core.NewID(), Sealed: sealed, Hint: secret[len(secret)-4:], CreateTime: now}}}
		if err := st.CreateWebhook(ctx, w); err != nil {
			b.Fatal(err)
		}
	}
	cs := &countingStore{Store: st}
	e := New(Config{
		Store: cs, Cipher: box,
		Sender:  NewSender(SenderConfig{Policy: core.AddressPolicy{Dev: true}, MaxConnsPerHost: 512}),
		Logger:  slog.New(slog.NewTextHandler(discard{}, &slog.HandlerOptions{Level: slog.LevelError})),
		Metrics: NewMetrics(prometheus.NewRegistry(), nil),
	})
	cat, _ := core.NewCatalog()
	pub := publish.New(publish.Config{Store: st, Catalog: cat, Policy: core.AddressPolicy{Dev: true}, Direct: e})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	defer func() {
		cancel()
		<-done
		e.cfg.Sender.Abort()
	}()

	data := json.RawMessage(`{"batch":"` + string(bytes.Repeat([]byte{'x'}, 560)) + `"}`)
	publishN := func(events int) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(events) {
					if _, err := pub.Publish(ctx, project, []publish.Input{{Type: "batch.succeeded", Data: data, DataValid: true}}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	// Warm up: connections, caches.
	publishN(200)
	cs.wait(int64(200 * hooks))
	base := int64(200 * hooks)

	b.ReportAllocs()
	b.ResetTimer()
	events := max(b.N/hooks, 1)
	publishN(events)
	cs.wait(base + int64(events*hooks))
	b.StopTimer()
}

// serve204 answers every request on ln with 204 No Content, at the least
// CPU an HTTP/1.1 receiver can spend (so the benchmark measures the
// engine): it reads the head, skips Content-Length bytes of body and
// writes a fixed response. The channel closes once ln is closed and every
// connection has ended.
func serve204(ln net.Listener) <-chan struct{} {
	done := make(chan struct{})
	var wg sync.WaitGroup
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				wg.Wait()
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReaderSize(c, 16<<10)
				for {
					n := 0
					for {
						line, err := r.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
						if k, v, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), "content-length") {
							n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
						}
					}
					if _, err := r.Discard(n); err != nil {
						return
					}
					if _, err := c.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
	return done
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
