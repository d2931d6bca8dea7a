package executor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommandEnvironment (issue 13, defect 12): the video command gets its
// request variables and an allow-list of the server's environment, never
// the master key or anything else the server holds.
func TestCommandEnvironment(t *testing.T) {
	t.Setenv("LONGHOOK_MASTER_KEY", "c2VjcmV0LW1hc3Rlci1rZXktdGhhdC1tdXN0LW5vdC1sZWFr")
	t.Setenv("LONGHOOK_DATABASE_URL", "postgres://u:password@db/x")
	out := filepath.Join(t.TempDir(), "video.mp4")
	c := &Command{Path: "/bin/sh", Args: []string{"-c", `env > "$LONGHOOK_OUTPUT"`}}
	if _, err := c.RenderVideo(t.Context(), &VideoSpec{Prompt: "a cat", Model: "veo"}, out); err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := string(env)
	for _, leak := range []string{"LONGHOOK_MASTER_KEY", "LONGHOOK_DATABASE_URL", "password"} {
		if strings.Contains(got, leak) {
			t.Errorf("the command saw %s:\n%s", leak, got)
		}
	}
	for _, want := range []string{"LONGHOOK_VIDEO_PROMPT=a cat", "LONGHOOK_VIDEO_MODEL=veo", "PATH="} {
		if !strings.Contains(got, want) {
			t.Errorf("the command did not get %s:\n%s", want, got)
		}
	}
}
