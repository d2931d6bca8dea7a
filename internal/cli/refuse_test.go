package cli

import (
	"context"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/store/sqlite"
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

// TestMissingMasterKeyForSealedData (newcomer's restore drill): a data dir
// whose database was used with a master key that is no longer there (a
// restore that brought back longhook.db but not master.key, a second
// PostgreSQL instance without the first one's key) is refused before a
// new master.key is written — a new key could not open the sealed
// secrets. Put back, the key starts the server again; a database that
// never held sealed data (made by a CLI command before the first serve)
// still gets a new key.
func TestMissingMasterKeyForSealedData(t *testing.T) {
	t.Parallel()
	env := map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": strings.Repeat("k", 40)}
	check := func(t *testing.T, dir string, args ...string) {
		t.Helper()
		serveArgsUntilReady(t, env, func(string) {}, args...)
		keyFile := filepath.Join(dir, "master.key")
		key, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(keyFile); err != nil {
			t.Fatal(err)
		}
		code, out, errs := run(t, env, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
		if code != 2 || !strings.Contains(errs, "master.key does not exist") || !strings.Contains(errs, "holds secrets sealed with a master key") {
			t.Fatalf("exit %d, stderr %q; want 2 and the missing key named", code, errs)
		}
		if out != "" {
			t.Errorf("stdout of a refused start: %q", out)
		}
		if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
			t.Fatalf("the refused start wrote a master.key (%v)", err)
		}
		if args[len(args)-1] == dir { // SQLite: the offline jwks commands likewise
			if code, _, errs := run(t, nil, "jwks", "rotate", "--data-dir", dir); code != 2 || !strings.Contains(errs, "holds secrets sealed") {
				t.Errorf("jwks rotate without the key: exit %d, %q", code, errs)
			}
			if code, out, errs := run(t, nil, "jwks", "list", "--data-dir", dir); code != 0 || !strings.Contains(out, "RS256") {
				t.Errorf("jwks list without the key: exit %d, %q %q", code, out, errs)
			}
			if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
				t.Fatalf("a jwks command wrote a master.key (%v)", err)
			}
		}
		if err := os.WriteFile(keyFile, key, 0o600); err != nil {
			t.Fatal(err)
		}
		serveArgsUntilReady(t, env, func(string) {}, args...)
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "data")
		check(t, dir, "--data-dir", dir)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		url, drop, err := tempPostgresDB(context.Background(), pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(drop)
		dir := filepath.Join(t.TempDir(), "data")
		check(t, dir, "--data-dir", dir, "--database-url", url, "--migrate")
	})
	t.Run("nothing sealed yet", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "data")
		st, err := sqlite.Open(context.Background(), filepath.Join(dir, "longhook.db"))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateProject(context.Background(), core.Project{ID: core.NewID(), Name: "first", CreateTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
		_ = st.Close()
		serveArgsUntilReady(t, env, func(string) {}, "--data-dir", dir)
		if _, err := os.Stat(filepath.Join(dir, "master.key")); err != nil {
			t.Fatalf("no master.key after the first serve: %v", err)
		}
	})
}
