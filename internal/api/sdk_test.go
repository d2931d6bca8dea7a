package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// sdkDir holds the pinned @google/genai package and the compat script.
const sdkDir = "testdata/sdk"

// stampName marks node_modules as installed from a given package-lock.json.
const stampName = ".longhook-lock-sha256"

// npmMu serialises npmCI: two concurrent `npm ci` runs in one directory
// corrupt node_modules.
var npmMu sync.Mutex

// npmCI installs the pinned SDK with `npm ci`, unless node_modules was
// already installed from the current package-lock.json.
func npmCI(t *testing.T) {
	t.Helper()
	// Parallel tests share node_modules: one installs while the others wait.
	npmMu.Lock()
	defer npmMu.Unlock()
	lock, err := os.ReadFile(filepath.Join(sdkDir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(sdkDir, "node_modules", stampName)
	if got, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(got)) == want {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = sdkDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	if err := os.WriteFile(stamp, []byte(want+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

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
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: skipping the official SDK compatibility test", tool)
		}
	}
	npmCI(t)
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
