//go:build linux

package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/disktest"
)

// seqReceiver records the "seq" of every event it is sent.
type seqReceiver struct {
	mu  sync.Mutex
	got map[int]bool
}

func (r *seqReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var ev struct {
		Data struct{ Seq int } `json:"data"`
	}
	body, _ := io.ReadAll(req.Body)
	if json.Unmarshal(body, &ev) == nil {
		r.mu.Lock()
		r.got[ev.Data.Seq] = true
		r.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *seqReceiver) missing(seqs []int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range seqs {
		if !r.got[s] {
			n++
		}
	}
	return n
}

// TestServeDiskFull: the SQLite data dir is a 24 MiB tmpfs that fills up
// while events are published. Publishes then get 503 UNAVAILABLE (never
// a 2xx for an event not stored), /readyz answers 503 and says why; once
// space returns, both recover without a restart, and every event whose
// publish got a 2xx is delivered.
func TestServeDiskFull(t *testing.T) {
	t.Parallel()
	dir := disktest.Tmpfs(t, "24m")

	rcv := &seqReceiver{got: map[int]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := &http.Server{Handler: rcv}
	go rs.Serve(ln)
	t.Cleanup(func() { _ = rs.Close() })

	const key = "disk-key-0123456789abcdef0123456789abcdef"
	master := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))
	env := Env{Getenv: func(k string) string {
		return map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": key, "LONGHOOK_MASTER_KEY": master}[k]
	}, Stdout: io.Discard, Stderr: io.Discard}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := NewServer(ctx, ServeConfig{Addr: "127.0.0.1:0", DataDir: dir, Dev: true, TimeScale: 600,
		SoftStop: time.Second, Lease: 20 * time.Second}, env, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	post := func(path string, body any) (int, []byte) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1beta"+path, bytes.NewReader(b))
		req.Header.Set("x-goog-api-key", key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, rb
	}
	if code, b := post("/webhooks", map[string]any{"uri": "http://" + ln.Addr().String() + "/h", "subscribed_events": []string{"batch.succeeded"}}); code != 200 {
		t.Fatalf("create webhook: %d %s", code, b)
	}
	pad := string(bytes.Repeat([]byte("x"), 32<<10))
	var accepted []int
	seq := 0
	publish := func() (int, []byte) {
		seq++
		code, b := post("/events", map[string]any{"type": "batch.succeeded", "data": map[string]any{"seq": seq, "pad": pad}})
		if code/100 == 2 {
			accepted = append(accepted, seq)
		}
		return code, b
	}
	readyz := func() (int, string) {
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for range 20 {
		if code, b := publish(); code != 200 {
			t.Fatalf("publish with room: %d %s", code, b)
		}
	}

	// Fill the filesystem.
	filler := disktest.Fill(t, dir)
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, b := publish()
		if code == http.StatusServiceUnavailable {
			var env struct {
				Error struct{ Status string } `json:"error"`
			}
			if json.Unmarshal(b, &env) != nil || env.Error.Status != "UNAVAILABLE" {
				t.Fatalf("publish on a full disk: %d %s; want the UNAVAILABLE error envelope", code, b)
			}
			break
		}
		if code != 200 {
			t.Fatalf("publish on a full disk: %d %s; want 503 UNAVAILABLE", code, b)
		}
		if time.Now().After(deadline) {
			t.Fatal("publishes kept succeeding on a full disk")
		}
	}
	if code, body := readyz(); code != http.StatusServiceUnavailable || !bytes.Contains([]byte(body), []byte("disk")) {
		t.Errorf("/readyz on a full disk: %d %s; want 503 saying why", code, body)
	}

	// Space returns: service resumes by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		code, _ := publish()
		rc, _ := readyz()
		if code == 200 && rc == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered after space returned: publish %d, readyz %d", code, rc)
		}
		time.Sleep(50 * time.Millisecond)
	}
	deadline = time.Now().Add(90 * time.Second) // lost completions come back after the 20 s lease
	for rcv.missing(accepted) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d accepted events never delivered", rcv.missing(accepted), len(accepted))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d events accepted (%d publishes), all delivered", len(accepted), seq)
}
