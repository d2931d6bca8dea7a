package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// longhookBin is the path of the longhook binary TestMain builds.
var longhookBin string

// TestMain builds cmd/longhook once, runs the tests, and checks that no
// goroutine outlives them.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "longhook-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	longhookBin = filepath.Join(dir, "longhook")
	if err := buildLonghook(longhookBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// buildLonghook runs `go build -o out ./cmd/longhook` in the module root.
// The binary is built without -race even when the tests run with it: it is
// the product under test, and the race detector would slow the crash test
// several-fold.
func buildLonghook(out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("go not in PATH: %w", err)
	}
	gomod, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if root == "." || root == "" {
		return fmt.Errorf("not inside a module (go env GOMOD = %q)", gomod)
	}
	cmd := exec.Command(goBin, "build", "-o", out, "./cmd/longhook")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/longhook: %w\n%s", err, stderr.String())
	}
	return nil
}
