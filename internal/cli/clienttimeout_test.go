package cli

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// A client command against a --server that accepts the connection and
// then says nothing gives up after --timeout with exit 3 and a message
// naming the flag; before, it waited for ever.
func TestClientCommandGivesUpOnASilentServer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept, read, never answer
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			go func() { _, _ = c.Read(make([]byte, 4096)) }()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		code int
		errs string
	}
	done := make(chan result, 1)
	go func() {
		var out, errb syncBuffer
		code := Run(ctx, []string{"webhooks", "list", "--server", "http://" + ln.Addr().String(), "--api-key", "lh_x", "--timeout", "200ms"},
			Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errb})
		done <- result{code, errb.String()}
	}()
	select {
	case r := <-done:
		if r.code != exitUnreachable || !strings.Contains(r.errs, "no answer from the server") || !strings.Contains(r.errs, "--timeout") {
			t.Fatalf("exit %d, %q; want %d and a message naming --timeout", r.code, r.errs, exitUnreachable)
		}
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("webhooks list still waits on a silent server after 20 s (--timeout 200ms)")
	}
}

// --timeout bounds the wait for an answer, not the answer: deliveries tail
// follows past it and still prints what happens later.
func TestTailOutlivesTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serveUntilReady(t, dir, nil, func(url string) {
		env := map[string]string{"LONGHOOK_DATA_DIR": dir, "LONGHOOK_SERVER": url}
		if code, _, errs := run(t, env, "webhooks", "create", "--uri", "https://receiver.invalid/hook", "--events", "batch.succeeded"); code != 0 {
			t.Fatalf("webhooks create: %d %s", code, errs)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out, errb syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- Run(ctx, []string{"deliveries", "tail", "--json", "--timeout", "100ms"},
				Env{Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &errb})
		}()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(errb.String(), "Following deliveries") {
			select {
			case code := <-done:
				t.Fatalf("tail ended with %d: %s", code, errb.String())
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("tail did not start: %s", errb.String())
			}
		}
		// What is under test: the stream stays quiet for longer than
		// --timeout.
		time.Sleep(500 * time.Millisecond)
		if code, _, errs := run(t, env, "events", "publish", "--type", "batch.succeeded", "--data", `{"id":"batches/1"}`); code != 0 {
			t.Fatalf("publish: %d %s", code, errs)
		}
		for !strings.Contains(out.String(), "batch.succeeded") {
			select {
			case code := <-done:
				t.Fatalf("tail ended with %d after --timeout: %s", code, errb.String())
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("tail printed nothing of the publish: %q %s", out.String(), errb.String())
			}
		}
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("tail after Ctrl-C: exit %d, %s", code, errb.String())
		}
	})
}
