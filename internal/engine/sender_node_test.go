package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// nodeReceiver runs testdata/receiver.mjs and returns its base URL and a
// function reporting its open connections.
func nodeReceiver(t *testing.T, keepAlive time.Duration) (string, func() int) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed: this test runs a Node.js receiver (CI has it)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "node", "testdata/receiver.mjs")
	if keepAlive > 0 {
		cmd.Env = append(cmd.Environ(), fmt.Sprintf("KEEP_ALIVE_MS=%d", keepAlive.Milliseconds()))
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("receiver.mjs: %v", err)
	}
	var ports struct{ Port, Admin int }
	if err := json.Unmarshal([]byte(line), &ports); err != nil {
		t.Fatalf("receiver.mjs printed %q: %v", line, err)
	}
	admin := fmt.Sprintf("http://127.0.0.1:%d/", ports.Admin)
	open := func() int {
		resp, err := http.Get(admin)
		if err != nil {
			t.Fatalf("receiver admin: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	return fmt.Sprintf("http://127.0.0.1:%d", ports.Port), open
}

// waitIdleClosed waits until every connection to the receiver is closed,
// by the receiver's keep-alive timeout or by the sender's idle limit.
func waitIdleClosed(t *testing.T, open func() int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for open() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the receiver still has %d connections open", open())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A Node.js receiver with default settings closes kept-alive connections
// after 5 s idle. Attempts after such a pause, mixed with timeouts,
// redirects, 429s and 500s on the same host, all get their answer: no
// attempt fails on a connection the receiver had already closed. The
// sender closes idle connections first (IdleConnTimeout); a receiver
// closing them sooner than that (1 s here) costs a resend on a new
// connection, never an attempt.
func TestSenderNodeKeepAlive(t *testing.T) {
	t.Parallel()
	t.Run("default", func(t *testing.T) { t.Parallel(); testNodeKeepAlive(t, 0) })
	t.Run("keepAliveTimeout=1s", func(t *testing.T) { t.Parallel(); testNodeKeepAlive(t, time.Second) })
}

func testNodeKeepAlive(t *testing.T, keepAlive time.Duration) {
	base, open := nodeReceiver(t, keepAlive)
	s := devSender(t, SenderConfig{AttemptTimeout: 2 * time.Second})
	want := map[string]core.FailureKind{
		"/slow": core.FailTimeout, "/redirect": core.FailRedirect, "/throttle": core.FailThrottled, "/error": core.FailHTTPStatus,
	}
	send := func(path string) Result {
		return s.Send(context.Background(), Request{URI: base + path, Body: []byte(`{"type":"ping"}`)})
	}
	check := func(path string, res Result) {
		t.Helper()
		if path == "/ok" {
			if _, ok := res.Outcome.(core.Success); !ok {
				t.Errorf("%s: %v (status %d, %s); want 200", path, res.Outcome, res.StatusCode, res.Err)
			}
			return
		}
		if got := failureKind(t, res); got != want[path] {
			t.Errorf("%s: %v (%s); want %v", path, got, res.Err, want[path])
		}
	}
	burst := func(paths []string) {
		var wg sync.WaitGroup
		for _, p := range paths {
			wg.Go(func() { check(p, send(p)) })
		}
		wg.Wait()
	}
	var oks []string
	for range 8 {
		oks = append(oks, "/ok")
	}
	mixed := append([]string{"/slow", "/slow", "/redirect", "/throttle", "/error", "/error"}, oks...)

	burst(oks) // eight pooled connections
	waitIdleClosed(t, open)
	for range 3 {
		check("/ok", send("/ok")) // after the pause: one attempt, answered
		burst(mixed)
		waitIdleClosed(t, open)
	}
	burst(oks)
}
