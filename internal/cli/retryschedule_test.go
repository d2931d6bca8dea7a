package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// serve --retry-schedule (and LONGHOOK_RETRY_SCHEDULE) refuses a schedule
// the engine cannot follow — not a duration, a step of 0 or less, one
// past the 24 h horizon, too many, none — as a usage error naming the
// flag (exit 2), before it touches the data dir; a valid one, in any
// order, is accepted.
func TestServeRetryScheduleFlag(t *testing.T) {
	t.Parallel()
	start := func(env map[string]string, args ...string) (int, string, string) {
		dir := filepath.Join(t.TempDir(), "data")
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // a start that is not refused ends at once
		var out, errb bytes.Buffer
		code := Run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir}, args...),
			Env{Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &errb})
		if _, err := os.Stat(dir); code == 2 && !os.IsNotExist(err) {
			t.Errorf("%v %v: the refused start made the data dir (%v)", env, args, err)
		}
		return code, out.String(), errb.String()
	}
	for _, v := range []string{"soon", "5s,x", "0s", "5s,-1s", "5s,24h0m1s", "48h", ",", strings.Repeat("1s,", 101)} {
		if code, out, errs := start(nil, "--retry-schedule", v); code != 2 || !strings.Contains(errs, "--retry-schedule") {
			t.Errorf("--retry-schedule %q: exit %d, %q %q; want exit 2 naming the flag", v, code, out, errs)
		}
	}
	if code, out, errs := start(map[string]string{"LONGHOOK_RETRY_SCHEDULE": "5s,0s"}); code != 2 || !strings.Contains(errs, "retry-schedule") {
		t.Errorf("LONGHOOK_RETRY_SCHEDULE=5s,0s: exit %d, %q %q; want exit 2 naming it", code, out, errs)
	}
	for _, v := range []string{"1s", "10m,1m,24h", "1.5s, 90s"} {
		if code, _, errs := start(nil, "--retry-schedule", v); code == 2 {
			t.Errorf("--retry-schedule %q refused: %q", v, errs)
		}
	}
}

// The flag's default is the contract's schedule, so the help shows the
// schedule in force and an unset flag changes nothing.
func TestRetryScheduleFlagDefault(t *testing.T) {
	t.Parallel()
	v := defaultRetryScheduleFlag()
	if v != "5s,30s,2m,10m,30m,1h,2h,4h,6h" {
		t.Errorf("default --retry-schedule %q", v)
	}
	got, err := parseRetryScheduleFlag(v)
	if err != nil || !slices.Equal(got, core.DefaultRetrySchedule) {
		t.Errorf("default --retry-schedule reads as %v, %v; want %v", got, err, core.DefaultRetrySchedule)
	}
	if got, err := parseRetryScheduleFlag("1.5s, 90s"); err != nil || !slices.Equal(got, []time.Duration{1500 * time.Millisecond, 90 * time.Second}) {
		t.Errorf("1.5s, 90s reads as %v, %v", got, err)
	}
}
