package cli

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/sqlite"
	"github.com/longhook/longhook/internal/syncbuf"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer = syncbuf.Buffer

var listeningLine = regexp.MustCompile(`listening on (http://\S+)`)

// serveUntilReady runs `longhook serve` on dir until it listens, calls fn
// with its URL, then stops it and returns what it printed.
func serveUntilReady(t *testing.T, dir string, env map[string]string, fn func(url string)) (stdout, stderr string) {
	t.Helper()
	return serveArgsUntilReady(t, env, fn, "--data-dir", dir)
}

// serveArgsUntilReady is serveUntilReady with serve's arguments given
// (besides --addr 127.0.0.1:0).
func serveArgsUntilReady(t *testing.T, env map[string]string, fn func(url string), args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...),
			Env{Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &errb})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for listeningLine.FindStringSubmatch(out.String()) == nil {
		select {
		case code := <-done:
			cancel()
			t.Fatalf("serve exited with %d before listening: %s %s", code, out.String(), errb.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not listen: %s", errb.String())
		}
	}
	fn(listeningLine.FindStringSubmatch(out.String())[1])
	cancel()
	<-done
	return out.String(), errb.String()
}

// status answers GET /v1beta/webhooks with key.
func status(t *testing.T, url, key string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/v1beta/webhooks", nil)
	req.Header.Set("x-goog-api-key", key)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestBootstrapKeyValidatedFirst (issue 13, defect 13): a too-short
// LONGHOOK_BOOTSTRAP_API_KEY is refused before anything is created, and a
// later start with a valid key bootstraps normally. A data dir left in the
// trap state by an older version (a default project without any key) is
// repaired by the next start.
func TestBootstrapKeyValidatedFirst(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	code, _, errs := run(t, map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": "short"}, "serve", "--data-dir", dir, "--addr", "127.0.0.1:0")
	if code != 2 || !strings.Contains(errs, "LONGHOOK_BOOTSTRAP_API_KEY") {
		t.Fatalf("short key: exit %d, %q", code, errs)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the refused start created the data dir (%v)", err)
	}
	key := strings.Repeat("k", 40)
	serveUntilReady(t, dir, map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": key}, func(url string) {
		if st := status(t, url, key); st != http.StatusOK {
			t.Fatalf("bootstrap key after a refused start: %d", st)
		}
	})

	// The trap state: a default project and no key at all.
	trap := filepath.Join(t.TempDir(), "trap")
	st, err := sqlite.Open(context.Background(), filepath.Join(trap, "longhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateProject(context.Background(), core.Project{ID: core.NewID(), Name: "default", CreateTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	out, _ := serveUntilReady(t, trap, map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": key}, func(url string) {
		if st := status(t, url, key); st != http.StatusOK {
			t.Fatalf("keyless default project not repaired: %d", st)
		}
	})
	if !strings.Contains(out, "API key (shown once") {
		t.Errorf("the repair did not print the key: %q", out)
	}
}

// TestBootstrapKeyLaterStart: LONGHOOK_BOOTSTRAP_API_KEY is read only on
// first start; a later start with another key (which is not a key of the
// store) says so in its log instead of leaving its 401s unexplained, and
// never logs the key. A later start with the key it bootstrapped with
// says nothing.
func TestBootstrapKeyLaterStart(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	key, other := strings.Repeat("a", 40), strings.Repeat("b", 40)
	_, errs := serveUntilReady(t, dir, map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": key}, func(string) {})
	if strings.Contains(errs, "bootstrap.key_ignored") {
		t.Errorf("first start warned about its own key: %s", errs)
	}
	_, errs = serveUntilReady(t, dir, map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": key}, func(string) {})
	if strings.Contains(errs, "bootstrap.key_ignored") {
		t.Errorf("a later start with the bootstrapped key warned: %s", errs)
	}
	_, errs = serveUntilReady(t, dir, map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": other}, func(url string) {
		if st := status(t, url, other); st != http.StatusUnauthorized {
			t.Errorf("a key set after the first start: %d, want 401", st)
		}
	})
	if !strings.Contains(errs, "bootstrap.key_ignored") {
		t.Errorf("a later start with another key did not warn: %s", errs)
	}
	if strings.Contains(errs, other) {
		t.Errorf("the key was logged: %s", errs)
	}
}

// TestDataFilesPrivate (issue 13, defect 9): in a data dir made 0755 by
// hand, the database and its WAL files are 0600, and serve warns about
// the directory.
func TestDataFilesPrivate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	_, errs := serveUntilReady(t, dir, map[string]string{}, func(string) {
		// While serving, the WAL and shared-memory files exist too.
		for _, name := range []string{"longhook.db", "longhook.db-wal", "longhook.db-shm", "master.key", "api-key"} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s is %v, want -rw-------", name, fi.Mode().Perm())
			}
		}
	})
	if !strings.Contains(errs, "serve.data_dir_permissions") {
		t.Errorf("no warning about a 0755 data dir: %s", errs)
	}
}

// TestBootstrapWaitsForTheInstanceBootstrapping: an instance that starts
// while another holds the bootstrap lease, between creating the default
// project and its key, waits for it instead of creating a second key
// (which collided with the first one's: both instances share
// LONGHOOK_BOOTSTRAP_API_KEY, and key digests are unique). Found by
// TestMultiInstanceNoDuplicates on PostgreSQL; the store here is SQLite,
// the lease logic is the same.
func TestBootstrapWaitsForTheInstanceBootstrapping(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	key := strings.Repeat("b", 40)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "longhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The other instance, midway: the lease taken, the project created, no key yet.
	p := core.Project{ID: core.NewID(), Name: "default", CreateTime: time.Now().UTC()}
	if ok, err := st.AcquireLease(ctx, "bootstrap", "other-instance", time.Now().UTC(), time.Minute); err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	if err := st.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(runCtx, []string{"serve", "--data-dir", dir, "--addr", "127.0.0.1:0"},
			Env{Getenv: func(k string) string { return map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": key}[k] }, Stdout: &out, Stderr: &errb})
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(errb.String(), "bootstrap.wait") {
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d instead of waiting for the bootstrap lease: %s", code, errb.String())
		case <-time.After(10 * time.Millisecond):
		}
		if strings.Contains(errb.String(), "bootstrap.repair") || time.Now().After(deadline) {
			t.Fatalf("serve did not wait for the instance holding the bootstrap lease: %s", errb.String())
		}
	}
	// The other instance finishes: its key, then the lease released.
	digest, hint := api.KeyDigest(key), key[len(key)-4:]
	if err := st.CreateAPIKey(ctx, core.APIKey{ID: core.NewID(), ProjectID: p.ID, Name: "bootstrap", Digest: digest, Hint: hint, Admin: true, CreateTime: time.Now().UTC()}); err != nil {
		t.Fatalf("the bootstrapping instance's key: %v", err)
	}
	if err := st.ReleaseLease(ctx, "bootstrap", "other-instance"); err != nil {
		t.Fatal(err)
	}
	for listeningLine.FindStringSubmatch(out.String()) == nil {
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d: %s", code, errb.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not listen: %s", errb.String())
		}
	}
	if code := status(t, listeningLine.FindStringSubmatch(out.String())[1], key); code != http.StatusOK {
		t.Errorf("the bootstrap key after waiting: %d", code)
	}
	keys, err := st.ListAPIKeys(ctx, "")
	if err != nil || len(keys) != 1 {
		t.Errorf("%d API keys (%v), want the one bootstrap key", len(keys), err)
	}
	cancel()
	<-done
}
