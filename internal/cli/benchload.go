package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/longhook/longhook/webhook"
)

// benchBody is the data object of every benchmark event, padded so the
// delivered envelope is about size bytes; sent_at_ns is filled per event.
func benchBody(size int) []byte {
	pad := max(size-120, 0)
	return []byte(`{"id":"batches/bench","output_file_uri":"files/bench","pad":"` + strings.Repeat("x", pad) + `"}`)
}

type benchClient struct {
	base, key string
	http      *http.Client
}

func (b *benchClient) post(ctx context.Context, path string, body any, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return b.postJSON(ctx, path, data, out)
}

// postJSON posts a body already encoded. The load generator builds its
// publish bodies as bytes (appendEvent): encoding a map per event with
// encoding/json cost the generator ~4 µs per publish of the two CPUs it
// shares with the server, time the ceiling's client never spends.
func (b *benchClient) postJSON(ctx context.Context, path string, data []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("x-goog-api-key", b.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		rb, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, rb)
	}
	if out == nil {
		// Read to the end so the connection is reused, as the
		// ceiling's client does.
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	}
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return json.Unmarshal(rb, out)
}

// appendEvent appends one publish request's event object to dst: the
// batch.succeeded data the receiver reads its latency from (sent_at_ns),
// padded to the event size, and the dynamic webhook_config when given
// (uris is its JSON array, or empty).
func appendEvent(dst []byte, pad string, uris []byte) []byte {
	dst = append(dst, `{"type":"batch.succeeded","data":{"id":"batches/bench","output_file_uri":"files/bench","pad":"`...)
	dst = append(dst, pad...)
	dst = append(dst, `","sent_at_ns":`...)
	dst = strconv.AppendInt(dst, time.Now().UnixNano(), 10)
	dst = append(dst, '}')
	if len(uris) > 0 {
		dst = append(dst, `,"webhook_config":{"uris":`...)
		dst = append(dst, uris...)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// publishTimes is what publishAll measured: how long publishing took, each
// call's round trip and, with a rate, how late each call left against its
// slot in the schedule.
type publishTimes struct {
	elapsed  time.Duration
	rtt, lag []time.Duration
}

func (p *publishTimes) add(q publishTimes) {
	p.elapsed += q.elapsed
	p.rtt = append(p.rtt, q.rtt...)
	p.lag = append(p.lag, q.lag...)
}

// publishAll publishes c.Events events with c.Concurrency publishers and
// returns how long publishing took and each call's times.
func publishAll(ctx context.Context, clients []*benchClient, c benchConfig, padLen int, dynURIs []string) (publishTimes, error) {
	pr, err := newPublishRun(clients, c, padLen, dynURIs)
	if err != nil {
		return publishTimes{}, err
	}
	pr.start = time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, c.Concurrency)
	times := make([]publishTimes, c.Concurrency)
	for g := range c.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pr.publish(ctx, &times[g]); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	all := publishTimes{elapsed: time.Since(pr.start)}
	for _, t := range times {
		all.rtt = append(all.rtt, t.rtt...)
		all.lag = append(all.lag, t.lag...)
	}
	close(errs)
	if err := <-errs; err != nil {
		return publishTimes{}, err
	}
	return all, nil
}

// publishRun is one publishAll: the calls its publishers share out, in
// order, and what each call sends.
type publishRun struct {
	clients  []*benchClient
	c        benchConfig
	padLen   int
	pad      string        // the data's padding to the event size
	uris     []byte        // the dynamic webhook_config's uris (JSON), or empty
	per      int           // events per call
	calls    int           // calls to make
	interval time.Duration // between two calls' slots with a rate, else 0
	start    time.Time     // the schedule's start
	next     atomic.Int64  // the next call to make
}

func newPublishRun(clients []*benchClient, c benchConfig, padLen int, dynURIs []string) (*publishRun, error) {
	pr := &publishRun{clients: clients, c: c, padLen: padLen, pad: strings.Repeat("x", max(padLen-110, 0))}
	if len(dynURIs) > 0 {
		var err error
		if pr.uris, err = json.Marshal(dynURIs); err != nil {
			return nil, err
		}
	}
	pr.per = max(c.Batch, 1)
	pr.calls = (c.Events + pr.per - 1) / pr.per
	if c.Rate > 0 {
		pr.interval = time.Duration(float64(time.Second) * float64(pr.per) / c.Rate)
	}
	return pr, nil
}

// publish is one publisher: it makes the next call, at its slot with a
// rate, until none is left or one fails, and records its times in mine.
func (pr *publishRun) publish(ctx context.Context, mine *publishTimes) error {
	for {
		i := int(pr.next.Add(1)) - 1
		if i >= pr.calls {
			return nil
		}
		if pr.interval > 0 {
			slot := pr.start.Add(time.Duration(i) * pr.interval)
			if d := time.Until(slot); d > 0 {
				time.Sleep(d)
			}
			mine.lag = append(mine.lag, time.Since(slot))
		}
		sent := time.Now()
		err := pr.call(ctx, i)
		mine.rtt = append(mine.rtt, time.Since(sent))
		if err != nil {
			return err
		}
	}
}

// call makes call i, on the clients in turn: one event without a batch
// size, else a batch of per events (the last call's may be fewer).
func (pr *publishRun) call(ctx context.Context, i int) error {
	cl := pr.clients[i%len(pr.clients)]
	if pr.c.Batch == 0 {
		return cl.postJSON(ctx, "/events", appendEvent(make([]byte, 0, pr.padLen+256), pr.pad, pr.uris), nil)
	}
	n := min(pr.per, pr.c.Events-i*pr.per)
	body := append(make([]byte, 0, n*(pr.padLen+256)+16), `{"events":[`...)
	for k := range n {
		if k > 0 {
			body = append(body, ',')
		}
		body = appendEvent(body, pr.pad, pr.uris)
	}
	return cl.postJSON(ctx, "/events:batchPublish", append(body, "]}"...), nil)
}

// bareCeiling measures plain POSTs of body to url with the given
// concurrency: the most any delivery system could do on this machine.
// Signed, each carries the Standard Webhooks headers a delivery does;
// unsigned, none: the loopback's physical limit.
func bareCeiling(ctx context.Context, url string, data []byte, conc, n int, signed bool) (float64, error) {
	secret, _ := webhook.NewSecret()
	sec, _ := webhook.ParseSecret(secret)
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc * 2}}
	defer cl.CloseIdleConnections()
	var next atomic.Int64
	var failed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				now := time.Now()
				id := "msg_" + strconv.FormatInt(now.UnixNano(), 36)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
				req.Header.Set("Content-Type", "application/json")
				if signed {
					req.Header.Set("webhook-id", id)
					req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
					req.Header.Set("webhook-signature", webhook.Sign(sec, id, now, data))
				}
				resp, err := cl.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("bare-HTTP ceiling: %d requests failed", f)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
