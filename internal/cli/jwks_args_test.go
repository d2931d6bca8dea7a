package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// jwks rotate and list on a data dir that holds no database (a mistyped
// --data-dir) say so and create nothing: a key rotated there reaches no
// server, yet rotate said "running servers pick it up".
func TestJWKSNeedsTheServersDatabase(t *testing.T) {
	t.Parallel()
	for _, verb := range []string{"rotate", "list"} {
		dir := filepath.Join(t.TempDir(), "typo")
		code, out, errs := run(t, nil, "jwks", verb, "--data-dir", dir)
		if code != 1 || !strings.Contains(errs, "no database at") || strings.Contains(out, "pick it up") {
			t.Errorf("jwks %s on a missing database: exit %d, %q %q", verb, code, out, errs)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("jwks %s made the data dir (%v)", verb, err)
		}
	}
}

// A first run vs a typo (projects and keys): on a data dir that holds no
// database, projects list and every keys verb say so and create nothing
// (projects list printed an empty table from a database it had just made
// at the mistyped path); projects create, which may provision before
// serve's first start, makes the database and says where.
func TestProjectsAndKeysOnAMissingDatabase(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"projects", "list"}, {"keys", "list"}, {"keys", "create"}, {"keys", "revoke", "k1"}} {
		dir := filepath.Join(t.TempDir(), "typo")
		code, out, errs := run(t, nil, append(args, "--data-dir", dir)...)
		if code != 1 || !strings.Contains(errs, "no database at "+filepath.Join(dir, "longhook.db")) || out != "" {
			t.Errorf("%v on a missing database: exit %d, %q %q; want 1 and 'no database at'", args, code, out, errs)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%v made the data dir (%v)", args, err)
		}
	}
	dir := filepath.Join(t.TempDir(), "first")
	code, out, errs := run(t, nil, "projects", "create", "acme", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "acme") || !strings.Contains(errs, "created a new database at "+filepath.Join(dir, "longhook.db")) {
		t.Fatalf("projects create on a first run: exit %d, %q %q", code, out, errs)
	}
	if code, out, errs := run(t, nil, "projects", "list", "--data-dir", dir); code != 0 || !strings.Contains(out, "acme") || errs != "" {
		t.Errorf("projects list after: exit %d, %q %q", code, out, errs)
	}
	if code, _, errs := run(t, nil, "projects", "create", "second", "--data-dir", dir); code != 0 || errs != "" {
		t.Errorf("projects create on an existing database: exit %d, %q (no note expected)", code, errs)
	}
}

// jwks rotate without --jwt-algorithm keeps the current key's algorithm: a
// plain rotate made an RS256 key, switching an ES256 or EdDSA server's
// signatures to RS256.
func TestJWKSRotateKeepsTheAlgorithm(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	if code, _, errs := run(t, nil, "projects", "create", "acme", "--data-dir", dir); code != 0 {
		t.Fatalf("projects create: %d %s", code, errs)
	}
	newest := func() string {
		t.Helper()
		code, out, errs := run(t, nil, "jwks", "list", "--data-dir", dir)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) < 2 {
			t.Fatalf("jwks list: %d %q %q", code, out, errs)
		}
		return strings.Fields(lines[1])[1] // newest first: KID ALG ...
	}
	for _, step := range []struct {
		flags []string
		want  string
	}{
		{nil, "RS256"}, // the first key
		{[]string{"--jwt-algorithm", "ES256"}, "ES256"},
		{nil, "ES256"},
		{[]string{"--jwt-algorithm", "EdDSA"}, "EdDSA"},
		{nil, "EdDSA"},
		{[]string{"--jwt-algorithm", "RS256"}, "RS256"},
	} {
		if code, _, errs := run(t, nil, append([]string{"jwks", "rotate", "--data-dir", dir}, step.flags...)...); code != 0 {
			t.Fatalf("jwks rotate %v: %d %s", step.flags, code, errs)
		}
		if got := newest(); got != step.want {
			t.Errorf("after jwks rotate %v the newest key is %s, want %s", step.flags, got, step.want)
		}
	}
}

// jwks rotate -h says what the default algorithm is — the current key's —
// without the flag package adding a contradicting `(default "RS256")`.
func TestJWKSRotateHelpDefault(t *testing.T) {
	t.Parallel()
	_, out, errs := run(t, nil, "jwks", "rotate", "-h")
	help := out + errs
	if !strings.Contains(help, "the current key's") || strings.Contains(help, `(default "RS256")`) {
		t.Errorf("jwks rotate -h:\n%s", help)
	}
}
