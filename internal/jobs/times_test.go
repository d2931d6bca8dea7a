package jobs_test

import (
	"encoding/json"
	"testing"
)

// A job's or file's times read the same in the answer that created it as
// on every later read: the store keeps microseconds, so the create answer
// must not show nanoseconds that no later GET repeats.
func TestCreateAnswerTimesMatchGet(t *testing.T) {
	t.Parallel()
	f := setup(t, options{noRunner: true})
	same := func(what string, created, got *reply, fields ...string) {
		t.Helper()
		for _, p := range fields {
			if c, g := created.str(p), got.str(p); c == "" || c != g {
				t.Errorf("%s %s: create answered %q, get %q", what, p, c, g)
			}
		}
	}

	b := f.call("POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", map[string]any{"batch": map[string]any{
		"inputConfig": map[string]any{"requests": map[string]any{"requests": []any{map[string]any{
			"request": map[string]any{"contents": []any{map[string]any{"parts": []any{map[string]any{"text": "hi"}}}}}}}}}}}).must(t, 200)
	same("batch", b, f.call("GET", "/v1beta/"+b.str("name"), nil).must(t, 200), "metadata.createTime", "metadata.updateTime")

	in := f.call("POST", "/v1beta/interactions", map[string]any{"model": "m", "input": "x", "background": true}).must(t, 200)
	same("interaction", in, f.call("GET", "/v1beta/interactions/"+in.str("id"), nil).must(t, 200), "created", "updated")

	res, body := f.send("POST", f.srv.URL+"/upload/v1beta/files", f.key, map[string]string{
		"X-Goog-Upload-Protocol": "raw", "Content-Type": "text/plain"}, "hello")
	if res.StatusCode != 200 {
		t.Fatalf("upload: %d %s", res.StatusCode, body)
	}
	up := &reply{status: res.StatusCode, raw: []byte(body)}
	if err := json.Unmarshal(up.raw, &up.body); err != nil {
		t.Fatal(err)
	}
	name := up.str("file.name")
	got := f.call("GET", "/v1beta/"+name, nil).must(t, 200)
	for _, p := range []string{"createTime", "updateTime", "expirationTime"} {
		if c, g := up.str("file."+p), got.str(p); c == "" || c != g {
			t.Errorf("file %s: upload answered %q, get %q", p, c, g)
		}
	}
}
