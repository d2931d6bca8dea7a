package engine

import "testing"

// TestRedactURI: the attempt log shows a destination without its query
// and without path segments that may be credentials. Slack's and
// Discord's incoming webhook URLs carry their token in the path, which
// the log showed in full.
func TestRedactURI(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T0123ABCD/B0123ABCD/abcdEFGH1234ijklMNOP5678":        "https://hooks.slack.com/services/T0123ABCD/B0123ABCD/…",
		"https://discord.com/api/webhooks/123456789012345678/Xy_Z-0aBcDeFgHiJkLmNoPqRsTuVwXyZ": "https://discord.com/api/webhooks/…/…",
		"https://example.com/hooks/longhook-receiver?token=s3cr3t":                             "https://example.com/hooks/longhook-receiver?…",
		"http://127.0.0.1:8080/hook":                     "http://127.0.0.1:8080/hook",
		"http://127.0.0.1:8080":                          "http://127.0.0.1:8080",
		"https://example.com/v1/0123456789abcdef0123/in": "https://example.com/v1/…/in",
	} {
		if got := redactURI(in); got != want {
			t.Errorf("redactURI(%q) = %q, want %q", in, got, want)
		}
	}
}
