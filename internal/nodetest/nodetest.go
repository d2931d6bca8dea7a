// Package nodetest installs the npm packages that tests use as independent
// clients and verifiers (the official @google/genai SDK, standardwebhooks,
// jose, jsonwebtoken): `npm ci` from a committed package-lock.json, once per
// directory and process, skipped when node_modules already matches the lock
// file and the node version.
package nodetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// stampName, inside node_modules, records what node_modules was installed
// from.
const stampName = ".longhook-npm-stamp"

var (
	mu   sync.Mutex
	done = map[string]error{} // directory → result of its install
)

// Require skips t when node or npm is missing (CI has both), and otherwise
// makes sure dir's locked packages are installed. Concurrent callers wait
// for one install: two `npm ci` runs in one directory corrupt node_modules.
func Require(t testing.TB, dir string) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: this test runs an npm client (CI has it)", tool)
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	err, ok := done[abs]
	if !ok {
		err = install(abs)
		done[abs] = err
	}
	if err != nil {
		t.Fatalf("npm ci in %s: %v", dir, err)
	}
}

func install(dir string) error {
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return err
	}
	ver, err := exec.Command("node", "--version").Output()
	if err != nil {
		return fmt.Errorf("node --version: %w", err)
	}
	sum := sha256.Sum256(append(lock, ver...))
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", stampName)
	if got, err := os.ReadFile(stamp); err == nil && string(got) == want {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w\n%s", err, out.String())
	}
	return os.WriteFile(stamp, []byte(want), 0o644)
}
