package api_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/nodetest"
)

// sdkDir holds the pinned @google/genai package and the compat script.
const sdkDir = "testdata/sdk"

// pathRecorder records the request paths a handler saw.
type pathRecorder struct {
	mu    sync.Mutex
	paths []string
}

func (p *pathRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.paths = append(p.paths, r.Method+" "+r.URL.Path)
		p.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// TestOfficialSDK runs the official JS SDK (@google/genai, pinned in
// testdata/sdk/package-lock.json) against the API with its default version
// (v1) and with v1beta.
func TestOfficialSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the Node.js SDK compatibility test")
	}
	nodetest.Require(t, sdkDir)
	for _, version := range []string{"", "v1beta"} {
		name := version
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			rec := &pathRecorder{}
			srv := httptest.NewServer(rec.wrap(f.srv.Config.Handler))
			defer srv.Close()

			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", "compat.mjs")
			cmd.Dir = sdkDir
			cmd.Env = append(sdkEnv(),
				"LONGHOOK_BASE_URL="+srv.URL,
				"LONGHOOK_API_KEY="+f.key,
				"LONGHOOK_API_VERSION="+version,
			)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("SDK compat script failed: %v\n%s", err, out.String())
			}
			t.Log(strings.TrimSpace(out.String()))

			wantPrefix := "/v1/"
			if version != "" {
				wantPrefix = "/" + version + "/"
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.paths) < 20 {
				t.Errorf("only %d requests reached the server", len(rec.paths))
			}
			for _, p := range rec.paths {
				if _, path, _ := strings.Cut(p, " "); !strings.HasPrefix(path, wantPrefix) {
					t.Errorf("request %q is not under %s", p, wantPrefix)
				}
			}
		})
	}
}

// sdkEnv is the environment without the SDK's own settings (GOOGLE_*,
// GEMINI_*), which would otherwise override the script's base URL, key or
// version.
func sdkEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOOGLE_") && !strings.HasPrefix(kv, "GEMINI_") {
			env = append(env, kv)
		}
	}
	return env
}
