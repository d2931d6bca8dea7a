package jobs_test

import (
	"strings"
	"testing"
)

// A field that the batch and video routes accept in lowerCamel and in
// snake_case is refused when a body sets both spellings (as a name given
// twice is): one was silently dropped, so a job could notify the wrong
// URIs or read the wrong input. Nothing is created.
func TestBothSpellingsRefused(t *testing.T) {
	t.Parallel()
	f := setup(t, options{noRunner: true})
	req := map[string]any{"requests": map[string]any{"requests": []any{map[string]any{
		"request": map[string]any{"contents": []any{map[string]any{"parts": []any{map[string]any{"text": "x"}}}}}}}}}
	wcA := map[string]any{"uris": []string{"https://a.example/hook"}}
	wcB := map[string]any{"uris": []string{"https://b.example/hook"}}
	const batches = "/v1beta/models/gemini-2.5-flash:batchGenerateContent"
	for name, tc := range map[string]struct {
		path string
		body map[string]any
		frag string
	}{
		"batch webhook config": {batches, map[string]any{"batch": map[string]any{"inputConfig": req, "webhookConfig": wcA, "webhook_config": wcB}}, "webhookConfig or webhook_config"},
		"batch input config":   {batches, map[string]any{"batch": map[string]any{"inputConfig": req, "input_config": map[string]any{"file_name": "files/x"}}}, "inputConfig or input_config"},
		"batch display name":   {batches, map[string]any{"batch": map[string]any{"inputConfig": req, "displayName": "a", "display_name": "b"}}, "displayName or display_name"},
		"batch file name":      {batches, map[string]any{"batch": map[string]any{"inputConfig": map[string]any{"fileName": "files/a", "file_name": "files/b"}}}, "fileName or file_name"},
		"video webhook config": {"/v1beta/models/veo-3.0-generate-001:predictLongRunning", map[string]any{"instances": []any{map[string]any{"prompt": "a cat"}},
			"webhookConfig": wcA, "webhook_config": wcB}, "webhookConfig or webhook_config"},
	} {
		r := f.call("POST", tc.path, tc.body)
		if r.status != 400 || r.str("error.status") != "INVALID_ARGUMENT" || !strings.Contains(r.str("error.message"), tc.frag) {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	if ops := f.call("GET", "/v1beta/operations", nil).must(t, 200); ops.path("operations") != nil {
		t.Errorf("a refused request created a job: %s", ops.raw)
	}
}
