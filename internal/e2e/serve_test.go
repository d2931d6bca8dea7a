package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/syncbuf"
)

// startTimeout bounds how long serve may take to print its listening line.
const startTimeout = 30 * time.Second

// serveConfig is what startServe's options set.
type serveConfig struct {
	dev          bool
	flags        []string
	bootstrapKey string // "" lets serve generate the key
	env          []string
}

// A serveOption configures startServe.
type serveOption func(*serveConfig)

// withFlags appends command-line flags of `longhook serve`.
func withFlags(flags ...string) serveOption {
	return func(c *serveConfig) { c.flags = append(c.flags, flags...) }
}

// withoutDev starts serve without --dev (https only, no loopback targets).
func withoutDev() serveOption { return func(c *serveConfig) { c.dev = false } }

// withGeneratedKey leaves LONGHOOK_BOOTSTRAP_API_KEY unset, so serve
// generates the bootstrap key and prints it.
func withGeneratedKey() serveOption { return func(c *serveConfig) { c.bootstrapKey = "" } }

// serveProc is a running `longhook serve` subprocess on its own data dir.
// It survives kill9 and restart: the data dir, the logs and (when the port
// is still free) the address stay the same.
type serveProc struct {
	t       testing.TB
	cfg     serveConfig
	dataDir string
	// APIKey is the bootstrap (admin) key of the default project.
	APIKey string

	stdout syncBuffer // every start's stdout
	stderr syncBuffer // every start's stderr: the logs

	mu     sync.Mutex
	url    string // http://host:port
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has been reaped
}

// startServe starts `longhook serve --addr 127.0.0.1:0 --dev` on a fresh
// data dir with a random LONGHOOK_BOOTSTRAP_API_KEY, waits for it to print
// its listening line, and kills it when the test ends.
func startServe(t testing.TB, opts ...serveOption) *serveProc {
	t.Helper()
	cfg := serveConfig{dev: true, bootstrapKey: randomKey(t)}
	for _, o := range opts {
		o(&cfg)
	}
	s := &serveProc{t: t, cfg: cfg, dataDir: t.TempDir(), APIKey: cfg.bootstrapKey}
	t.Cleanup(s.kill9)
	s.start("127.0.0.1:0")
	if s.APIKey == "" {
		s.APIKey = printedKey(s.stdout.String())
		if s.APIKey == "" {
			t.Fatalf("serve printed no API key:\n%s", s.stdout.String())
		}
	}
	return s
}

// randomKey returns a 43-character random API key.
func randomKey(t testing.TB) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "e2e_" + base64.RawURLEncoding.EncodeToString(b)
}

// keyLine finds the key serve prints, indented, after "API key (shown once".
var keyLine = regexp.MustCompile(`(?m)^API key \(shown once[^\n]*\n\s*\n\s+(\S+)\s*$`)

// printedKey extracts the bootstrap key from serve's stdout ("" if absent).
func printedKey(stdout string) string {
	if m := keyLine.FindStringSubmatch(stdout); m != nil {
		return m[1]
	}
	return ""
}

// listenLine is serve's "ready" line on stdout.
var listenLine = regexp.MustCompile(`^longhook \S+ listening on (https?://\S+)$`)

// args returns the serve command line for addr.
func (s *serveProc) args(addr string) []string {
	args := []string{"serve", "--data-dir", s.dataDir, "--addr", addr}
	if s.cfg.dev {
		args = append(args, "--dev")
	}
	return append(args, s.cfg.flags...)
}

// environ is the test's environment without LONGHOOK_* variables (they
// would change serve's flags), plus the configured ones.
func (s *serveProc) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LONGHOOK_") {
			env = append(env, kv)
		}
	}
	if s.cfg.bootstrapKey != "" {
		env = append(env, "LONGHOOK_BOOTSTRAP_API_KEY="+s.cfg.bootstrapKey)
	}
	return append(env, s.cfg.env...)
}

// start launches the process on addr and waits for its listening line.
func (s *serveProc) start(addr string) {
	s.t.Helper()
	if err := s.tryStart(addr); err != nil {
		s.t.Fatalf("start serve: %v\nstderr:\n%s", err, s.stderr.String())
	}
}

// errExited reports a serve process that ended before it listened.
var errExited = errors.New("serve exited before listening")

// tryStart starts a process on addr and waits for its listening line;
// it returns errExited if the process ended first.
func (s *serveProc) tryStart(addr string) error {
	cmd := exec.Command(longhookBin, s.args(addr)...)
	cmd.Env = s.environ()
	cmd.Stderr = &s.stderr
	setPdeathsig(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	urls := make(chan string, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			s.stdout.Write([]byte(line + "\n"))
			if m := listenLine.FindStringSubmatch(line); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	exited := make(chan struct{})
	go func() {
		<-readDone // Wait closes the pipe: read it to the end first
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case u := <-urls:
		s.mu.Lock()
		s.url = u
		s.mu.Unlock()
		return nil
	case <-exited:
		return fmt.Errorf("%w (%v)", errExited, cmd.ProcessState)
	case <-timer.C:
		s.kill9()
		return fmt.Errorf("no listening line within %v", startTimeout)
	}
}

// URL returns the base URL of the current process, e.g. http://127.0.0.1:4242.
func (s *serveProc) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Logs returns everything serve has written to stderr so far.
func (s *serveProc) Logs() string { return s.stderr.String() }

// kill9 sends SIGKILL and waits until the process is reaped. It is a no-op
// when the process is not running.
func (s *serveProc) kill9() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// restart starts serve again on the same data dir, on the same address
// when the port is still free (else on a fresh port; URL tells). The
// previous process must have been stopped with kill9.
func (s *serveProc) restart() {
	s.t.Helper()
	u, err := url.Parse(s.URL())
	if err != nil {
		s.t.Fatal(err)
	}
	logged := len(s.stderr.String())
	err = s.tryStart(u.Host)
	if errors.Is(err, errExited) && strings.Contains(s.stderr.String()[logged:], "address already in use") {
		err = s.tryStart("127.0.0.1:0")
	}
	if err != nil {
		s.t.Fatalf("restart serve: %v\nstderr:\n%s", err, s.stderr.String())
	}
}

// runLonghook runs another longhook command (e.g. `jwks rotate`) to
// completion and returns its stdout; a failure ends the test.
func runLonghook(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(longhookBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("longhook %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer = syncbuf.Buffer

// loopbackHostName returns a host name other than localhost that
// /etc/hosts maps to a loopback address ("" if there is none). Resolving
// it needs no DNS query.
func loopbackHostName() string {
	data, err := os.ReadFile(filepath.Join("/etc", "hosts"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		ip := net.ParseIP(f[0])
		if ip == nil || !ip.IsLoopback() || ip.To4() == nil {
			continue
		}
		for _, name := range f[1:] {
			if !strings.EqualFold(name, "localhost") && !strings.HasSuffix(strings.ToLower(name), ".localhost") &&
				!strings.HasPrefix(strings.ToLower(name), "localhost") {
				return name
			}
		}
	}
	return ""
}
