package cli

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serveChild is `longhook serve` in a child process (this test binary,
// see TestMain) on its own address.
type serveChild struct {
	cmd    *exec.Cmd
	URL    string
	exited chan struct{} // closed once the process is reaped
}

// startServeChild starts serve with args in a child process and waits for
// its listening line; the test's end kills it.
func startServeChild(t *testing.T, args ...string) *serveChild {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, append([]string{"serve", "--addr", "127.0.0.1:0", "--dev"}, args...)...)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &serveChild{cmd: cmd, exited: make(chan struct{})}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listeningLine.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(c.kill9)
	select {
	case c.URL = <-urls:
	case <-c.exited:
		t.Fatalf("serve exited before listening: %s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not listen: %s", stderr.String())
	}
	return c
}

// kill9 kills the child with SIGKILL (on Windows TerminateProcess) and
// waits until it is reaped.
func (c *serveChild) kill9() {
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// runFor is run with a deadline: a serve that is not refused stops
// after d.
func runFor(t *testing.T, d time.Duration, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out, errb syncBuffer
	code := Run(ctx, args, Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

// healthy tells whether url's /healthz answers 200.
func healthy(t *testing.T, url string) bool {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url + "/healthz")
	if err != nil {
		t.Logf("GET /healthz: %v", err)
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestSecondServeOnOneDatabaseRefused: while a serve (a real process)
// runs on a SQLite database, a second serve on it — by the same
// --data-dir or by a sqlite:// URL naming the same file — is refused at
// once (exit 1) with a message naming the database and the holder, and
// the first goes on serving; so is `migrate up`, while `migrate status`
// and `keys list` work beside it. Another data dir is not affected. Once
// the first is killed with SIGKILL, a new serve starts; once that one
// stops cleanly, so does the next.
func TestSecondServeOnOneDatabaseRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "longhook.db")
	first := startServeChild(t, "--data-dir", dir)
	pid := strconv.Itoa(first.cmd.Process.Pid)

	host, _ := os.Hostname()
	want := "the database " + db + " is in use by another longhook serve (pid " + pid + " on host " + host + ", since "
	for _, args := range [][]string{
		{"--data-dir", dir},
		{"--data-dir", t.TempDir(), "--database-url", "sqlite://" + db},
	} {
		code, out, errs := runFor(t, 20*time.Second, append([]string{"serve", "--addr", "127.0.0.1:0", "--dev"}, args...)...)
		if code != 1 || !strings.Contains(errs, want) || !strings.Contains(errs, hintServe) || strings.Contains(out, "listening") {
			t.Fatalf("a second serve %v: exit %d, stdout %q, stderr %q; want exit 1 and %q", args, code, out, errs, want)
		}
	}
	if !healthy(t, first.URL) {
		t.Fatal("the first serve stopped answering after the second was refused")
	}
	if code, out, errs := run(t, nil, "migrate", "status", "--data-dir", dir); code != 0 || !strings.Contains(out, "applied") {
		t.Errorf("migrate status beside serve: exit %d, %q %q", code, out, errs)
	}
	if code, out, errs := run(t, nil, "keys", "list", "--data-dir", dir); code != 0 {
		t.Errorf("keys list beside serve: exit %d, %q %q", code, out, errs)
	}
	code, _, errs := run(t, nil, "migrate", "up", "--data-dir", dir)
	if code != 1 || !strings.Contains(errs, "is in use by another longhook serve (pid "+pid) || !strings.Contains(errs, hintMigrate) {
		t.Errorf("migrate up beside serve: exit %d, %q; want exit 1, in use", code, errs)
	}
	serveUntilReady(t, t.TempDir(), nil, func(url string) {}) // another data dir

	first.kill9()
	for range 2 { // after a kill -9, then after a clean stop
		serveUntilReady(t, dir, nil, func(url string) {
			if !healthy(t, url) {
				t.Error("the new serve does not answer")
			}
		})
	}
	if code, out, errs := run(t, nil, "migrate", "up", "--data-dir", dir); code != 0 {
		t.Errorf("migrate up with no serve: exit %d, %q %q", code, out, errs)
	}
}

// TestRefusedStartRemovesItsLockFile: a start refused after the lock was
// taken (the port is in use) leaves an existing data dir as it was.
func TestRefusedStartRemovesItsLockFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	code, _, errs := runFor(t, 20*time.Second, "serve", "--data-dir", dir, "--addr", busy.Addr().String(), "--dev")
	if code != 1 || !strings.Contains(errs, "address already in use") {
		t.Fatalf("exit %d, %q; want the address in use", code, errs)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("the refused start left %s in the data dir", e.Name())
	}
}
