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
