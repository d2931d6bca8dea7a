package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/api"
)

// projects, keys and jwks take --json, so a provisioning script reads the
// new API key from a member instead of cutting it out of a sentence; the
// key it reads works against a real server, and the lists have the API's
// shape (projects list --json is what GET /v1/projects answers).
func TestAdminCommandsPrintJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"LONGHOOK_DATA_DIR": dir}
	var created api.ProjectResource
	decodeRun(t, env, &created, "projects", "create", "acme", "--json")
	if created.ID == "" || created.Name != "acme" || created.APIKey == nil ||
		!strings.HasPrefix(created.APIKey.Key, "lh_") || created.APIKey.ProjectID != created.ID {
		t.Fatalf("projects create --json: %+v", created)
	}
	var key api.APIKeyResource
	decodeRun(t, env, &key, "keys", "create", "--project", created.ID, "--name", "ci", "--json")
	if key.ID == "" || key.Name != "ci" || !strings.HasPrefix(key.Key, "lh_") || key.Hint != key.Key[len(key.Key)-4:] {
		t.Fatalf("keys create --json: %+v", key)
	}
	var admin api.APIKeyResource
	decodeRun(t, env, &admin, "keys", "create", "--project", created.ID, "--admin", "--json")
	if !admin.Admin || admin.Key == "" {
		t.Fatalf("keys create --admin --json: %+v", admin)
	}
	var keys struct{ Keys []api.APIKeyResource }
	decodeRun(t, env, &keys, "keys", "list", "--project", created.ID, "--json")
	if len(keys.Keys) != 3 {
		t.Fatalf("keys list --json: %+v", keys)
	}
	for _, k := range keys.Keys {
		if k.Key != "" || k.ProjectID != created.ID {
			t.Fatalf("keys list --json shows a secret or another project: %+v", k)
		}
	}
	var signing struct{ Keys []map[string]string }
	decodeRun(t, env, &signing, "jwks", "list", "--json")
	if signing.Keys == nil {
		t.Fatalf("jwks list --json of no keys: want an empty list, got %+v", signing)
	}
	_, cliOut, _ := run(t, env, "projects", "list", "--json")

	serveUntilReady(t, dir, nil, func(url string) {
		for _, k := range []string{created.APIKey.Key, key.Key} {
			if code := status(t, url, k); code != http.StatusOK {
				t.Errorf("key from --json: GET /v1beta/webhooks %d", code)
			}
		}
		req, _ := http.NewRequest(http.MethodGet, url+"/v1/projects", nil)
		req.Header.Set("x-goog-api-key", admin.Key)
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
		defer c.CloseIdleConnections()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var fromAPI, fromCLI struct{ Projects []api.ProjectResource }
		if err := json.Unmarshal(body, &fromAPI); err != nil {
			t.Fatalf("GET /v1/projects: %v %s", err, body)
		}
		if err := json.Unmarshal([]byte(cliOut), &fromCLI); err != nil {
			t.Fatal(err)
		}
		if len(fromCLI.Projects) != 1 || len(fromAPI.Projects) != 1 || fromCLI.Projects[0] != fromAPI.Projects[0] {
			t.Errorf("projects list --json %+v, GET /v1/projects %+v", fromCLI.Projects, fromAPI.Projects)
		}
	})
}

// decodeRun runs the command, which must succeed, and decodes its stdout
// (nothing else) as JSON into v.
func decodeRun(t *testing.T, env map[string]string, v any, args ...string) {
	t.Helper()
	code, out, errs := run(t, env, args...)
	if code != 0 {
		t.Fatalf("%v: exit %d, %s", args, code, errs)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		t.Fatalf("%v: stdout is not one JSON value (%v): %q", args, err, out)
	}
}

// A keys or jwks verb refuses a flag only another verb reads (exit 2,
// naming it) instead of ignoring it: `keys list --admin` listed every key
// as if it had filtered, `jwks list --jwt-algorithm ES256` did nothing.
func TestAdminVerbsRefuseOtherVerbsFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"LONGHOOK_DATA_DIR": dir}
	if code, _, errs := run(t, env, "projects", "create", "acme"); code != 0 {
		t.Fatalf("projects create: %d %s", code, errs)
	}
	for _, c := range []struct {
		flag string
		args []string
	}{
		{"-admin", []string{"keys", "list", "--admin"}},
		{"-name", []string{"keys", "list", "--name", "ci"}},
		{"-project", []string{"keys", "revoke", "k1", "--project", "p"}},
		{"-json", []string{"keys", "revoke", "k1", "--json"}},
		{"-jwt-algorithm", []string{"jwks", "list", "--jwt-algorithm", "ES256"}},
		{"-json", []string{"jwks", "rotate", "--json"}},
	} {
		code, out, errs := run(t, env, c.args...)
		if code != 2 || out != "" || !strings.Contains(errs, "flag provided but not defined: "+c.flag) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 naming %s", c.args, code, out, firstLines(errs, 2), c.flag)
		}
	}
	// Nothing was rotated by the refused rotate.
	var signing struct{ Keys []map[string]string }
	decodeRun(t, env, &signing, "jwks", "list", "--json")
	if len(signing.Keys) != 0 {
		t.Errorf("a refused jwks rotate made a key: %v", signing.Keys)
	}
}
