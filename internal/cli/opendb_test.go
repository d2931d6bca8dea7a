package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/longhook/longhook/internal/secretbox"
)

// serve on a data dir whose SQLite file cannot be opened (here: not a
// database) reports the error and exits 1. It panicked: openStore handed
// back a nil *sqlite.Store inside a non-nil core.Store, which the refused
// start's cleanup then closed.
func TestServeUnopenableDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := secretbox.CreateKey(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "longhook.db"), []byte(strings.Repeat("not a database ", 40)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, nil, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir)
	if code != 1 || !strings.Contains(errs, "longhook:") || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 1 and the error", code, out, errs)
	}
}
