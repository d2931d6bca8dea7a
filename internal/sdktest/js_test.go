package sdktest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/nodetest"
)

// nodeDir holds the pinned @google/genai 3.1.0 and jose, and sdk.mjs.
const nodeDir = "testdata/node"

// TestJSSDK drives a real serve over HTTPS with the official JS SDK
// (@google/genai 3.1.0, unmodified): every webhooks, batches and files
// call; video (generateVideos, refused by the SDK on the Gemini API, and
// Veo through interactions with a webhook_config: video.generated
// verified with npm jose, carrying user_metadata, and output_video
// downloaded through ai.files.download); an agent interaction through
// requires_action to interaction.completed with output; batch.failed with
// error; and the server's messages on interaction errors (400, 404). Each
// mode's calls are recorded for the interop matrix.
func TestJSSDK(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		partial()
		t.Skip("-short: skipping the Node.js SDK test")
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			partial() // nodetest.Require skips: the records are partial
		}
	}
	nodetest.Require(t, nodeDir)
	f := startServe(t, withTLS)
	for _, mode := range []string{"webhooks", "batches", "files", "video", "agent", "errors"} {
		t.Run(mode, func(t *testing.T) {
			for _, r := range runNode(t, f, mode) {
				record(t, "js", r.Op, r.Call, r.Outcome, r.Note)
			}
		})
	}
}

// runNode runs sdk.mjs in mode against f and returns the calls it
// reported.
func runNode(t *testing.T, f *server, mode string) []interopRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "sdk.mjs", mode)
	cmd.Dir = nodeDir
	for _, kv := range os.Environ() {
		// The SDK's own settings would override the script's.
		if !strings.HasPrefix(kv, "GOOGLE_") && !strings.HasPrefix(kv, "GEMINI_") && !strings.HasPrefix(kv, "NODE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LONGHOOK_BASE_URL="+f.url, "LONGHOOK_API_KEY="+f.key, "NODE_EXTRA_CA_CERTS="+f.caFile)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("node sdk.mjs %s: %v\n%s", mode, err, out.String())
	}
	var recs []interopRecord
	done := false
	for sc := bufio.NewScanner(&out); sc.Scan(); {
		line := sc.Text()
		done = done || line == "DONE"
		if rest, ok := strings.CutPrefix(line, "INTEROP "); ok {
			var r interopRecord
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			recs = append(recs, r)
		}
	}
	if !done || len(recs) == 0 {
		t.Fatalf("node sdk.mjs %s did not finish:\n%s", mode, out.String())
	}
	return recs
}
