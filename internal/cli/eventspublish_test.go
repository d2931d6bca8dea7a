package cli

import (
	"regexp"
	"strings"
	"testing"
)

// `longhook events publish` and `longhook trigger` with a key used before
// say that nothing was published. They printed "Published … to N
// destinations" for the repeat too, which was false: the server answered
// the original event and sent nothing.
func TestPublishSaysReplayed(t *testing.T) {
	t.Parallel()
	const key = "eventspublish-test-key-0123456789abcdef"
	serveUntilReady(t, t.TempDir(), map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": key}, func(url string) {
		api := []string{"--server", url, "--api-key", key}
		publish := append([]string{"events", "publish", "--type", "batch.succeeded", "--data", `{"id":"batches/1"}`,
			"--idempotency-key", "run-1"}, api...)
		code, out, errs := run(t, nil, publish...)
		m := regexp.MustCompile(`^Published batch.succeeded (\S+) to 0 destinations.\n$`).FindStringSubmatch(out)
		if code != 0 || m == nil {
			t.Fatalf("first publish: exit %d, %q %q", code, out, errs)
		}
		id := m[1]
		want := "Already published (idempotency key run-1): event " + id + " — nothing new was sent.\n"
		if code, out, errs = run(t, nil, publish...); code != 0 || out != want {
			t.Errorf("repeat: exit %d, %q %q; want %q", code, out, errs, want)
		}
		if code, out, errs = run(t, nil, append(publish, "--json")...); code != 0 || !strings.Contains(out, `"replayed": true`) ||
			!strings.Contains(out, `"id": "`+id+`"`) {
			t.Errorf("repeat --json: exit %d, %q %q; want the event with \"replayed\": true", code, out, errs)
		}

		trigger := append([]string{"trigger", "batch.failed", "--idempotency-key", "run-2"}, api...)
		if code, out, errs = run(t, nil, trigger...); code != 0 || !strings.HasPrefix(out, "Triggered batch.failed: event ") {
			t.Fatalf("trigger: exit %d, %q %q", code, out, errs)
		}
		if code, out, errs = run(t, nil, trigger...); code != 0 || !strings.HasPrefix(out, "Already published (idempotency key run-2): event ") {
			t.Errorf("trigger again: exit %d, %q %q", code, out, errs)
		}
	})
}
