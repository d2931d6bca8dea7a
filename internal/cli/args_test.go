package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The offline projects and keys commands take their flags before or after
// the positional argument, as the client commands do; refuse an empty
// project name as the API does; check their arguments before they open
// (and so create) a database; and name a missing key or project in words.
func TestLocalCommandsArguments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if code, out, errs := run(t, nil, "projects", "create", "acme", "--data-dir", dir); code != 0 || !strings.Contains(out, "acme") {
		t.Fatalf("projects create NAME --data-dir: exit %d, %q %q", code, out, errs)
	}
	if code, _, errs := run(t, nil, "projects", "create", "--data-dir", dir, ""); code != 2 || !strings.Contains(errs, "NAME must not be empty") {
		t.Errorf("projects create \"\": exit %d, %q", code, errs)
	}
	if code, out, _ := run(t, nil, "projects", "list", "--data-dir", dir); code != 0 || len(strings.Split(strings.TrimSpace(out), "\n")) != 2 {
		t.Errorf("want exactly one project, got %q", out)
	}
	code, _, errs := run(t, nil, "keys", "revoke", "nosuch", "--data-dir", dir)
	if code != 1 || !strings.Contains(errs, `no API key "nosuch"`) || strings.Contains(errs, "sqlite") {
		t.Errorf("keys revoke nosuch: exit %d, %q", code, errs)
	}
	for _, verb := range []string{"create", "list"} {
		if code, _, errs := run(t, nil, "keys", verb, "--data-dir", dir, "--project", "nope"); code != 2 || !strings.Contains(errs, `no project "nope"`) {
			t.Errorf("keys %s --project nope: exit %d, %q", verb, code, errs)
		}
	}
	fresh := filepath.Join(t.TempDir(), "data")
	for _, args := range [][]string{{"projects", "create"}, {"projects", "create", "a", "b"}, {"keys", "revoke"}, {"keys", "list", "extra"}} {
		if code, _, errs := run(t, nil, append(args, "--data-dir", fresh)...); code != 2 {
			t.Errorf("%v: exit %d, %q; want 2", args, code, errs)
		}
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("a usage error made the data dir (%v)", err)
	}
}
