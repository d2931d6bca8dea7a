package cli

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// receiver is the loopback destination: it answers 204 (or hangs, or 500
// for the webhooks told to) and records publish→receipt latency from the
// sent_at_ns field every benchmark event carries.
type receiver struct {
	mu        sync.Mutex
	latencies []time.Duration
	count     int64
	goal      int64
	reached   chan struct{} // closed when count reaches goal
	slow      map[string]bool
	fail      map[string]bool
	stop      chan struct{}
	perHook   map[string]int // deliveries received per healthy webhook
}

// until returns a channel closed once n deliveries have been received.
func (rv *receiver) until(n int64) <-chan struct{} {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.goal, rv.reached = n, make(chan struct{})
	if rv.count >= n {
		close(rv.reached)
	}
	return rv.reached
}

// received is the number of deliveries received so far.
func (rv *receiver) received() int64 {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.count
}

// bodyBuffers hold the receiver's request bodies: io.ReadAll grew a new
// slice through three sizes for every delivery, CPU the bench's receiver
// takes from the server it measures.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer bodyBuffers.Put(buf)
	buf.Reset()
	_, _ = buf.ReadFrom(r.Body)
	body := buf.Bytes()
	hook := strings.TrimPrefix(r.URL.Path, "/")
	switch {
	case rv.slow[hook]:
		rv.mu.Lock()
		rv.perHook[hook]++ // attempts, for HangingMin
		rv.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-rv.stop:
		}
		return
	case rv.fail[hook]:
		w.WriteHeader(http.StatusInternalServerError)
		return
	case hook == "ceiling":
		w.WriteHeader(http.StatusNoContent)
		return
	}
	now := time.Now()
	var lat time.Duration
	if i := bytes.Index(body, []byte(`"sent_at_ns":`)); i >= 0 {
		rest := body[i+len(`"sent_at_ns":`):]
		j := bytes.IndexAny(rest, ",}")
		if ns, err := strconv.ParseInt(string(rest[:j]), 10, 64); err == nil {
			lat = now.Sub(time.Unix(0, ns))
		}
	}
	w.WriteHeader(http.StatusNoContent)
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if lat > 0 {
		rv.latencies = append(rv.latencies, lat)
	}
	rv.count++
	rv.perHook[hook]++
	if rv.count == rv.goal {
		close(rv.reached)
	}
}

// listenLoopback serves h on a loopback port until stop is called; url is
// http://HOST:PORT.
func listenLoopback(h http.Handler) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// hookRange is the fewest and most requests the receiver counted for
// one of the webhooks h{from} to h{to-1} (0, 0 for none). rv.mu is held.
func (rv *receiver) hookRange(from, to int) (lo, hi int) {
	for i := from; i < to; i++ {
		n := rv.perHook[fmt.Sprintf("h%d", i)]
		if i == from || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	return lo, hi
}
