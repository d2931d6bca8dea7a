package gateway

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A sink that cannot be set up refuses the start before the inbox exists:
// the data dir the inbox would have made is not there afterwards, so a
// refused start leaves the disk as it was. The inbox was opened first and
// stayed (a Pub/Sub sink without Google credentials, as the shipped
// example config has, left a new gateway.db behind).
func TestSinkSetupFailureCreatesNothing(t *testing.T) {
	// Not parallel: no Application Default Credentials can be found for
	// the Pub/Sub client, whatever the machine has (t.Setenv).
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "no-such-credentials.json"))
	dir := filepath.Join(t.TempDir(), "data")
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(cfg, []byte("addr: 127.0.0.1:0\ndata_dir: "+dir+"\n"+
		"sources: [{name: a, verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]},\n"+
		"  sinks: [{name: ps, pubsub: {project: p, topic: t}}]}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := RunGateway(context.Background(), []string{"--config", cfg}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "pubsub") {
		t.Fatalf("start with a Pub/Sub sink without credentials: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused start left its data dir: %v", err)
	}
}
