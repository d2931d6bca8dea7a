package cli

import (
	"strings"
	"testing"
)

// Every command's -h opens with its command line and what it does, then
// lists its flags — not Go's bare "Usage of webhooks get:", which did not
// say that get takes an ID; serve and bench show examples.
func TestHelpSaysWhatACommandTakes(t *testing.T) {
	t.Parallel()
	cmds, subs := completionTree()
	for _, c := range cmds {
		if c == "completion" || c == "version" {
			continue // their own usage (completion), or none to give (version)
		}
		verbs := subs[c]
		if c == "trigger" || len(verbs) == 0 {
			verbs = []string{""}
		}
		for _, v := range verbs {
			args := []string{c}
			if v != "" {
				args = append(args, v)
			}
			code, _, errs := run(t, nil, append(args, "-h")...)
			head := "Usage: longhook " + strings.Join(args, " ")
			if c == "trigger" {
				head = "Usage: longhook trigger TYPE"
			}
			if code != 0 || !strings.HasPrefix(errs, head) || !strings.Contains(errs, "\n\nFlags:\n  -") {
				t.Errorf("%v -h: exit %d, %q; want it to open with %q and list the flags", args, code, firstLines(errs, 6), head)
			}
			if _, rest, _ := strings.Cut(errs, "\n\n"); v != "" && strings.HasPrefix(rest, "Flags:") {
				t.Errorf("%v -h: %q; want what the verb does before its flags", args, firstLines(errs, 4))
			}
		}
	}
	for args, want := range map[string]string{
		"webhooks get":         "Usage: longhook webhooks get ID [flags]\n\nShow one webhook.\n",
		"deliveries list":      "Usage: longhook deliveries list WEBHOOK_ID [--status S] [--event-type T] [flags]\n\nList a webhook's deliveries, newest first.\n",
		"deliveries tail":      "Usage: longhook deliveries tail [--webhook ID] [--event-type T] [flags]\n\nFollow new deliveries and attempts live.\n",
		"projects create":      "Usage: longhook projects create NAME [flags]\n\nCreate a project and its first API key.\n",
		"migrate up":           "Usage: longhook migrate up --database-url postgres://… [flags]\n",
		"serve":                "\nExamples:\n  longhook serve --dev",
		"bench":                "\nExamples:\n  longhook bench --events",
		"webhooks ping":        "Usage: longhook webhooks ping ID [flags]\n\nSend a webhook.ping event to a webhook.\n",
		"deliveries redeliver": "Usage: longhook deliveries redeliver DELIVERY_ID [flags]\n",
		"listen":               "Usage: longhook listen --from URL --forward-to URL [flags]\n\nRelays a serve webhook's events",
		"check":                "Usage: longhook check URL (--secret whsec_… | --jwks-issuer URL) [flags]\n",
		"gateway":              "Usage: longhook gateway --config gateway.yaml [flags]\n",
		"master-key rotate":    "Usage: longhook master-key rotate [flags]\n\nReplace the data dir's master.key, re-sealing every secret under the new key (stop serve first).\n",
	} {
		code, _, errs := run(t, nil, append(strings.Fields(args), "-h")...)
		if code != 0 || !strings.Contains(errs, want) {
			t.Errorf("%s -h: exit %d, %q; want %q", args, code, firstLines(errs, 8), want)
		}
	}
	// A flag mistake shows the same usage, and exits 2.
	code, _, errs := run(t, nil, "webhooks", "get", "--bogus")
	if code != 2 || !strings.Contains(errs, "Usage: longhook webhooks get ID [flags]") {
		t.Errorf("webhooks get --bogus: exit %d, %q", code, errs)
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
