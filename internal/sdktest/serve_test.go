package sdktest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/cli"
)

// server is a `longhook serve` running in this process.
type server struct {
	url string // http://127.0.0.1:port
	key string // the bootstrap API key of the default project
}

var listenLine = regexp.MustCompile(`^longhook \S+ listening on (https?://\S+)$`)

// startServe runs `longhook serve` on a free port and a fresh data dir,
// with short simulated model times, until t ends.
func startServe(t *testing.T) *server {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	s := &server{key: "sdk_" + base64.RawURLEncoding.EncodeToString(b)}
	env := map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": s.key}
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	exited := make(chan int, 1)
	go func() {
		exited <- cli.Run(ctx, []string{"serve", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--dev",
			"--sim-duration", "batch=100ms,video=200ms,interaction=100ms"},
			cli.Env{Getenv: func(k string) string { return env[k] }, Stdout: w, Stderr: io.Discard})
		_ = w.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-exited; code != 0 {
			t.Errorf("serve exited with %d", code)
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case s.url = <-found:
	case <-time.After(30 * time.Second):
		t.Fatal("serve printed no listening line within 30 s")
	}
	return s
}

// receiver is a webhook endpoint that records what it receives.
type receiver struct {
	srv *httptest.Server
	got chan delivery
}

type delivery struct {
	body  []byte
	event map[string]any
}

func (d delivery) data() map[string]any {
	m, _ := d.event["data"].(map[string]any)
	return m
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: make(chan delivery, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		d := delivery{body: body}
		_ = json.Unmarshal(body, &d.event)
		r.got <- d
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// next waits for the next delivery.
func (r *receiver) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-r.got:
		return d
	case <-time.After(30 * time.Second):
		t.Fatal("timed out waiting for a webhook delivery")
		return delivery{}
	}
}

// waitFor polls cond until it holds, for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}
