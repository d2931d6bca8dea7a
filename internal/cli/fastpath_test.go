package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"
)

// serve answers publishes through the fast path on plain HTTP, and
// through net/http alone with --no-http-fast-path; its shutdown waits for
// the fast path's connections.
func TestServeFastPath(t *testing.T) {
	t.Parallel()
	for _, off := range []bool{false, true} {
		const key = "fast-key-0123456789abcdef0123456789abcdef"
		master := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32))
		env := Env{Getenv: func(k string) string {
			return map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": key, "LONGHOOK_MASTER_KEY": master}[k]
		}, Stdout: io.Discard, Stderr: io.Discard}
		ctx, cancel := context.WithCancel(context.Background())
		srv, err := NewServer(ctx, ServeConfig{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Dev: true, TimeScale: 1,
			SoftStop: time.Second, Lease: 20 * time.Second, NoFastPath: off}, env, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx) }()
		client := &http.Client{Transport: &http.Transport{}}
		for range 3 {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1beta/events",
				bytes.NewReader([]byte(`{"type":"batch.succeeded","data":{}}`)))
			req.Header.Set("x-goog-api-key", key)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("publish: %d %s", resp.StatusCode, b)
			}
		}
		if off != (srv.fast == nil) {
			t.Fatalf("--no-http-fast-path %v: fast path %v", off, srv.fast)
		}
		if !off && srv.fast.Served() != 3 {
			t.Fatalf("the fast path served %d publishes, want 3", srv.fast.Served())
		}
		// The client's connection stays open: Run returns all the same.
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		client.CloseIdleConnections()
	}
}
