package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRefusedStartLeavesDiskAlone (newcomer's read-through): every way
// serve refuses to start (a bad flag or environment value, a bad database
// URL, a port in use, bad TLS files) leaves the disk as it was: no data
// dir, no master.key, no database, no CPU profile.
func TestRefusedStartLeavesDiskAlone(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"short bootstrap key", map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": "short"}, nil, 2, "configuration error: LONGHOOK_BOOTSTRAP_API_KEY is 5 characters long; it must be at least 32"},
		{"bad master key", map[string]string{"LONGHOOK_MASTER_KEY": "nope"}, nil, 2, "configuration error: LONGHOOK_MASTER_KEY"},
		{"bad env value", map[string]string{"LONGHOOK_WORKERS": "lots"}, nil, 2, `LONGHOOK_WORKERS="lots"`},
		{"bad flag value", nil, []string{"--workers", "lots"}, 2, "-workers"},
		{"short lease", nil, []string{"--lease", "1s"}, 2, "--lease"},
		{"bad log format", nil, []string{"--log-format", "xml"}, 2, "--log-format"},
		{"bad database scheme", nil, []string{"--database-url", "mysql://x"}, 2, "--database-url"},
		{"unreachable postgres", nil, []string{"--database-url", "postgres://postgres@127.0.0.1:1/x?connect_timeout=5"}, 1, "postgres"},
		{"port in use", nil, []string{"--addr", busy.Addr().String()}, 1, "address already in use"},
		{"bad event type", nil, []string{"--event-types", "Bad Type!"}, 2, "--event-types"},
		{"bad executor", nil, []string{"--executor", "nope"}, 2, "executor"},
		{"bad jwt algorithm", nil, []string{"--jwt-algorithm", "HS256"}, 2, "--jwt-algorithm"},
		{"missing tls files", nil, []string{"--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"}, 2, "tls"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			dir := filepath.Join(root, "data")
			profile := filepath.Join(root, "cpu.pprof")
			args := append([]string{"serve", "--data-dir", dir, "--addr", "127.0.0.1:0", "--cpuprofile", profile}, c.args...)
			code, out, errs := run(t, c.env, args...)
			if code != c.code || !strings.Contains(errs, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errs, c.code, c.want)
			}
			if strings.Contains(errs, "usage:") && c.env != nil {
				t.Errorf("an environment mistake is reported as a usage error: %q", errs)
			}
			if out != "" {
				t.Errorf("stdout of a refused start: %q", out)
			}
			left, err := os.ReadDir(root)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range left {
				t.Errorf("the refused start left %s behind", e.Name())
			}

			// An existing, empty data dir stays empty.
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			run(t, c.env, args...)
			if left, err := os.ReadDir(dir); err != nil || len(left) > 0 {
				t.Errorf("the refused start wrote into the existing data dir: %v %v", left, err)
			}
		})
	}
}
