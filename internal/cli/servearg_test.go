package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serve and bench take no arguments, and read flags wherever they are: an
// argument used to stop the flag parsing silently, so "serve --dev false
// --addr …" served in development mode on the default address. Now it is
// a usage error (exit 2) that says how a boolean flag takes a value, and
// nothing is created.
func TestServeAndBenchRefuseArguments(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--data-dir", dir, "--dev", "false", "--addr", "127.0.0.1:0"}, `serve takes no arguments, got "false": a boolean flag takes its value after =, as in --dev=false`},
		{[]string{"serve", "--data-dir", dir, "--addr", "127.0.0.1:0", "extra"}, `serve takes no arguments, got "extra"`},
		{[]string{"bench", "--events", "10", "extra"}, `bench takes no arguments, got "extra"`},
	} {
		// A deadline, so that a serve that starts anyway (the old code)
		// returns and fails the test instead of hanging it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var out, errb syncBuffer
		code := Run(ctx, c.args, Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errb})
		cancel()
		if code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 and %q", c.args, code, firstLines(errb.String(), 3), c.want)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused serve made the data dir (%v)", err)
	}
	// Flags after an argument-free serve still parse: a bad one anywhere
	// is refused.
	if code, _, errs := run(t, nil, "serve", "--data-dir", dir, "--addr", "bogus"); code != 2 || !strings.Contains(errs, "--addr") {
		t.Errorf("serve --addr bogus: exit %d, %q", code, errs)
	}
}

// A bad --log-level names the valid levels (it quoted slog's "unknown
// name"), and version refuses what it does not take (it printed its line
// to "version --json").
func TestLogLevelAndVersionUsage(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	if code, _, errs := run(t, nil, "serve", "--data-dir", dir, "--log-level", "loud"); code != 2 ||
		!strings.Contains(errs, `--log-level "loud": use debug, info, warn or error`) {
		t.Errorf("serve --log-level loud: exit %d, %q", code, errs)
	}
	if code, out, errs := run(t, nil, "version", "--json"); code != 2 || out != "" || !strings.Contains(errs, "version takes no arguments") {
		t.Errorf("version --json: exit %d, %q %q", code, out, errs)
	}
	if code, out, _ := run(t, nil, "version"); code != 0 || out != "longhook "+Version+"\n" {
		t.Errorf("version: exit %d, %q", code, out)
	}
	if code, _, errs := run(t, nil, "version", "-h"); code != 0 || !strings.HasPrefix(errs, "Usage: longhook version") {
		t.Errorf("version -h: exit %d, %q", code, errs)
	}
}
