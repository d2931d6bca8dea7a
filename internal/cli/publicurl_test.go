package cli

import (
	"bytes"
	"context"
	"net/http"
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

// serve on every interface (--addr :PORT, 0.0.0.0:PORT, [::]:PORT) prints
// and hands out localhost URLs, and warns that --public-url is unset; it
// printed "http://[::]:8080/console/" and signed "iss":"http://[::]:8080".
func TestServeOnEveryInterfaceUsesLocalhost(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", ":0"} {
		stdout, stderr := serveArgsUntilReady(t, nil, func(u string) {
			if !strings.HasPrefix(u, "http://localhost:") {
				t.Errorf("--addr %s: listening on %s, want http://localhost:PORT", addr, u)
			}
			resp, err := http.Get(u + "/readyz")
			if err != nil {
				t.Fatalf("--addr %s: %v", addr, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("--addr %s: /readyz %d", addr, resp.StatusCode)
			}
		}, "--data-dir", filepath.Join(t.TempDir(), "data"), "--addr", addr)
		if !strings.Contains(stdout, "Console: http://localhost:") {
			t.Errorf("--addr %s: %s", addr, stdout)
		}
		if !strings.Contains(stderr, "serve.public_url_default") || !strings.Contains(stderr, "--public-url") {
			t.Errorf("--addr %s: no warning about --public-url: %s", addr, stderr)
		}
	}
	// With --public-url set, or on a named host, there is nothing to warn of.
	_, stderr := serveArgsUntilReady(t, nil, func(string) {}, "--data-dir", filepath.Join(t.TempDir(), "data"),
		"--addr", "0.0.0.0:0", "--public-url", "https://hooks.example.com")
	_, stderr2 := serveArgsUntilReady(t, nil, func(string) {}, "--data-dir", filepath.Join(t.TempDir(), "data"))
	if strings.Contains(stderr+stderr2, "serve.public_url_default") {
		t.Errorf("warned with --public-url set or on 127.0.0.1: %s %s", stderr, stderr2)
	}
}
