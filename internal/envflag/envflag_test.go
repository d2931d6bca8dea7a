package envflag

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

// TestEveryFlagReadsItsVariable: whatever its type, a flag not given on
// the command line takes its variable, named by Name, and the usage names
// the same variable.
func TestEveryFlagReadsItsVariable(t *testing.T) {
	t.Parallel()
	env := map[string]string{"LONGHOOK_DATA_DIR": "/d", "LONGHOOK_WORKERS": "7", "LONGHOOK_DEV": "true",
		"LONGHOOK_SOFT_STOP": "3s", "LONGHOOK_ADDR": "from-env"}
	fs := New("t", func(k string) string { return env[k] }, io.Discard)
	dir := fs.String("data-dir", "", "")
	workers := fs.Int("workers", 1, "")
	dev := fs.Bool("dev", false, "")
	soft := fs.Duration("soft-stop", time.Second, "")
	addr := fs.String("addr", "", "")
	if err := fs.Parse([]string{"--addr", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	if *dir != "/d" || *workers != 7 || !*dev || *soft != 3*time.Second || *addr != "from-flag" {
		t.Errorf("got %q %d %v %v %q", *dir, *workers, *dev, *soft, *addr)
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.HasSuffix(f.Usage, "[$"+Name(f.Name)+"]") {
			t.Errorf("--%s usage %q does not name %s", f.Name, f.Usage, Name(f.Name))
		}
	})
}

// TestAlias: a deprecated variable is read when the rule's is not set,
// and reported; the rule's variable wins when both are set.
func TestAlias(t *testing.T) {
	t.Parallel()
	parse := func(env map[string]string) (string, []Deprecation, error) {
		fs := New("t", func(k string) string { return env[k] }, io.Discard)
		v := fs.String("config", "", "")
		fs.Int("workers", 1, "")
		fs.Alias("config", "LONGHOOK_GATEWAY_CONFIG")
		fs.Alias("workers", "OLD_WORKERS")
		err := fs.Parse(nil)
		return *v, fs.Deprecated(), err
	}
	v, dep, err := parse(map[string]string{"LONGHOOK_GATEWAY_CONFIG": "old.yaml"})
	if err != nil || v != "old.yaml" || len(dep) != 1 ||
		dep[0].String() != "LONGHOOK_GATEWAY_CONFIG is deprecated and will be removed: set LONGHOOK_CONFIG instead" {
		t.Errorf("alias alone: %q %v %v", v, dep, err)
	}
	if v, dep, err := parse(map[string]string{"LONGHOOK_GATEWAY_CONFIG": "old.yaml", "LONGHOOK_CONFIG": "new.yaml"}); err != nil || v != "new.yaml" || len(dep) != 0 {
		t.Errorf("both: %q %v %v", v, dep, err)
	}
	if _, _, err := parse(map[string]string{"OLD_WORKERS": "lots"}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `OLD_WORKERS="lots"`) {
		t.Errorf("bad value under the alias: %v", err)
	}
}

// TestErrors: a command-line mistake is ErrUsage, a bad variable ErrConfig.
func TestErrors(t *testing.T) {
	t.Parallel()
	fs := New("t", func(k string) string { return map[string]string{"LONGHOOK_WORKERS": "lots"}[k] }, io.Discard)
	fs.Int("workers", 1, "")
	if err := fs.Parse([]string{"--nope"}); !errors.Is(err, ErrUsage) {
		t.Errorf("unknown flag: %v", err)
	}
	fs = New("t", func(k string) string { return map[string]string{"LONGHOOK_WORKERS": "lots"}[k] }, io.Discard)
	fs.Int("workers", 1, "")
	err := fs.Parse(nil)
	if !errors.Is(err, ErrConfig) || err.Error() != `configuration error: LONGHOOK_WORKERS="lots" is not a valid value for --workers: parse error` {
		t.Errorf("bad variable: %v", err)
	}
}
