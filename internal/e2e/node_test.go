package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/nodetest"
)

// nodeDir holds package.json, the committed package-lock.json and the
// verifier scripts.
const nodeDir = "testdata/node"

// requireNode skips the test when node or npm is missing, and otherwise
// installs the locked verifier packages once per test binary.
func requireNode(t testing.TB) {
	t.Helper()
	nodetest.Require(t, nodeDir)
}

// nodeCase is the JSON a verifier script reads from stdin.
type nodeCase struct {
	Headers  map[string]string `json:"headers"`
	Body     string            `json:"body"`
	Secret   string            `json:"secret,omitempty"`
	JWKSURL  string            `json:"jwks_url,omitempty"`
	Issuer   string            `json:"issuer,omitempty"`
	Audience string            `json:"audience,omitempty"`
	Now      int64             `json:"now,omitempty"` // Unix seconds; 0 = the real clock
}

// newNodeCase returns the case for one received request.
func newNodeCase(r received) nodeCase {
	return nodeCase{
		Headers: map[string]string{
			"webhook-id":        r.Header.Get("webhook-id"),
			"webhook-timestamp": r.Header.Get("webhook-timestamp"),
			"webhook-signature": r.Header.Get("webhook-signature"),
		},
		Body: string(r.Body),
	}
}

// errRejected wraps a verifier script's rejection (exit code 1).
var errRejected = errors.New("rejected")

// runNode runs a verifier script from nodeDir with c on stdin. It returns
// the claims the script reports on success (JSON null for HMAC), an error
// wrapping errRejected with the script's message when it rejects, and ends
// the test when the script fails in any other way. It requires node itself
// (requireNode), so that a test that verifies without having asked for it
// neither runs before the packages are installed nor while another test
// installs them.
func runNode(t testing.TB, script string, c nodeCase) (json.RawMessage, error) {
	t.Helper()
	requireNode(t)
	in, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = nodeDir
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var res struct {
		OK     bool            `json:"ok"`
		Claims json.RawMessage `json:"claims"`
		Error  string          `json:"error"`
	}
	if jerr := json.Unmarshal(stdout.Bytes(), &res); jerr != nil {
		t.Fatalf("node %s: %v; stdout %q, stderr:\n%s", script, runErr, stdout.String(), stderr.String())
	}
	var exit *exec.ExitError
	switch {
	case runErr == nil && res.OK:
		return res.Claims, nil
	case errors.As(runErr, &exit) && exit.ExitCode() == 1 && !res.OK:
		return nil, fmt.Errorf("%w by %s: %s", errRejected, script, res.Error)
	default:
		t.Fatalf("node %s: %v; stdout %q, stderr:\n%s", script, runErr, stdout.String(), stderr.String())
		return nil, nil
	}
}
