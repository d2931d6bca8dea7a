package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve refuses a --public-url that is not an absolute http(s) URL before
// it touches the data dir: it is the JWT issuer receivers check and the
// base of the URLs the API and the console hand out ("notaurl/console/"
// was printed and "iss":"notaurl" signed).
func TestServeRefusesBadPublicURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"notaurl", "hooks.example.com", "ftp://hooks.example.com", "https://", "https://u:p@hooks.example.com",
		"https://hooks.example.com/?a=b", "https://hooks.example.com/#x"} {
		dir := filepath.Join(t.TempDir(), "data")
		// A cancelled context: a start that is not refused ends at once
		// instead of serving.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var out, errb bytes.Buffer
		code := Run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--public-url", u},
			Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errb})
		errs := errb.String()
		if code != 2 || !strings.Contains(errs, "--public-url") {
			t.Errorf("--public-url %q: exit %d, %q %q", u, code, out.String(), errs)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("--public-url %q: the refused start made the data dir (%v)", u, err)
		}
	}
}

// serve --addr that is not HOST:PORT is a usage error (exit 2) found
// before the data dir is touched; it was exit 1 from the listen.
func TestServeRefusesMalformedAddr(t *testing.T) {
	t.Parallel()
	for _, a := range []string{"nonsense", "127.0.0.1", "127.0.0.1:"} {
		dir := filepath.Join(t.TempDir(), "data")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var out, errb bytes.Buffer
		code := Run(ctx, []string{"serve", "--addr", a, "--data-dir", dir}, Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errb})
		if code != 2 || !strings.Contains(errb.String(), "--addr") {
			t.Errorf("--addr %q: exit %d, %q", a, code, errb.String())
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("--addr %q: the refused start made the data dir (%v)", a, err)
		}
	}
}
