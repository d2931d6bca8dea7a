package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve refuses counts and durations out of range as a usage error (exit 2)
// before it touches the data dir. They were taken silently: --retention
// -1h made every retention sweep delete all finished deliveries, events
// and idempotency keys at once; --workers 0, --per-destination -1 and
// --soft-stop -1s fell back to their defaults; a negative
// --jwks-rotate-every or --jwks-retire-margin rotated keys every round or
// dropped retired ones before their tokens expired.
func TestServeRefusesOutOfRangeFlags(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ flag, value string }{
		{"--workers", "0"}, {"--workers", "-3"},
		{"--per-destination", "0"}, {"--per-destination", "-1"},
		{"--per-destination-max", "-1"},
		{"--soft-stop", "-1s"},
		{"--retention", "0s"}, {"--retention", "-1h"},
		// Shorter than the 24 h publish idempotency window, which the
		// retention sweep would cut short with the events holding the keys.
		{"--retention", "1h"}, {"--retention", "23h59m"},
		{"--batch-window", "0s"}, {"--batch-window", "-1h"},
		{"--jwks-rotate-every", "0s"}, {"--jwks-rotate-every", "-1h"},
		{"--jwks-retire-margin", "-1m"},
		// An origin is what a browser sends in Origin: no path, no slash.
		{"--cors-origins", "app.example.com"}, {"--cors-origins", "https://app.example.com/"},
		{"--cors-origins", "https://app.example.com/x"}, {"--cors-origins", "*,https://a.example"},
		{"--cors-origins", "ftp://a.example"},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // a start that is not refused ends at once
		var out, errb bytes.Buffer
		code := Run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir, c.flag, c.value},
			Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errb})
		if code != 2 || !strings.Contains(errb.String(), c.flag) {
			t.Errorf("%s %s: exit %d, %q %q; want exit 2 naming the flag", c.flag, c.value, code, out.String(), errb.String())
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s %s: the refused start made the data dir (%v)", c.flag, c.value, err)
		}
	}
}

// --soft-stop 0 is accepted (attempts in flight are cut at once on
// shutdown), not refused with the negative ones; so is --retention 24h,
// the shortest that keeps the idempotency window.
func TestServeSoftStopZero(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ flag, value string }{{"--soft-stop", "0s"}, {"--retention", "24h"}} {
		dir := filepath.Join(t.TempDir(), "data")
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // the start ends at once instead of serving
		var out, errb bytes.Buffer
		code := Run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir, c.flag, c.value},
			Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errb})
		if code == 2 {
			t.Errorf("%s %s refused: %q", c.flag, c.value, errb.String())
		}
	}
}
