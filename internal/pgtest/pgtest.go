// Package pgtest is the tests' access to PostgreSQL: the machine's shared
// test server (URL, a schema of a test's own, one-off statements), and
// throwaway private servers for tests that must restart or stop the
// database under load (the shared server stays untouched). It is imported
// by tests only.
package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Server is a private PostgreSQL server in a temporary directory.
type Server struct {
	// URL is the postgres database, as the postgres user, trust auth.
	URL string
	ctl func(args ...string) error
}

// Ctl runs pg_ctl with the server's data dir, log, port and socket dir,
// waiting up to 60 s for the operation: Ctl("restart", "-m", "fast").
func (s *Server) Ctl(args ...string) error { return s.ctl(args...) }

// Start runs initdb and pg_ctl start on a free port — as the postgres OS
// user when the test runs as root, since PostgreSQL refuses to run as
// root — and stops the server when t ends. It skips t when the binaries
// are missing or cannot run here.
func Start(t testing.TB) *Server {
	t.Helper()
	initdbs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if p, err := exec.LookPath("initdb"); err == nil {
		initdbs = append(initdbs, p)
	}
	if len(initdbs) == 0 {
		t.Skip("initdb is not available")
	}
	slices.Sort(initdbs)
	bin := filepath.Dir(initdbs[len(initdbs)-1])

	base, err := os.MkdirTemp("", "longhook-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	var prefix []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root without a postgres OS user to run PostgreSQL as")
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			t.Skip("running as root without runuser to run PostgreSQL as postgres")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(base, uid, gid); err != nil {
			t.Fatal(err)
		}
		prefix = []string{runuser, "-u", "postgres", "--"}
	}
	run := func(name string, args ...string) error {
		argv := append(slices.Clone(prefix), filepath.Join(bin, name))
		argv = append(argv, args...)
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v: %s", name, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	data := filepath.Join(base, "data")
	if err := run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"); err != nil {
		t.Skipf("initdb cannot run here: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	logFile := filepath.Join(base, "postgres.log")
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, base)
	s := &Server{
		URL: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		ctl: func(args ...string) error {
			return run("pg_ctl", append([]string{"-D", data, "-l", logFile, "-o", opts, "-w", "-t", "60"}, args...)...)
		},
	}
	if err := s.Ctl("start"); err != nil {
		t.Skipf("private PostgreSQL did not start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Ctl("stop", "-m", "immediate"); err != nil {
			t.Logf("stop private PostgreSQL: %v", err)
		}
	})
	return s
}
