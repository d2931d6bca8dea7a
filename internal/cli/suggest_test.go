package cli

import (
	"strings"
	"testing"
)

// A mistyped command, verb or trigger type is a usage error (exit 2) that
// names the near miss, so the reader need not compare a list by eye; a
// word close to nothing still gets the whole list.
func TestTypoSuggestsTheCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"webhook", "list"}, `unknown command "webhook" (did you mean "webhooks"?)`},
		{[]string{"delivery", "list", "x"}, `(did you mean "deliveries"?)`},
		{[]string{"evnets", "list"}, `(did you mean "events"?)`},
		{[]string{"srve"}, `(did you mean "serve"?)`},
		{[]string{"webhooks", "lsit"}, `unknown command "lsit" for longhook webhooks (did you mean "list"?)`},
		{[]string{"deliveries", "tial"}, `(did you mean "tail"?)`},
		{[]string{"keys", "lst", "--data-dir", dir}, `(did you mean "list"?)`},
		{[]string{"migrate", "stauts", "--data-dir", dir}, `(did you mean "status"?)`},
		{[]string{"trigger", "batch.succeded", "--server", "http://127.0.0.1:1"}, `no sample for "batch.succeded" (did you mean "batch.succeeded"?)`},
	} {
		code, out, errs := run(t, nil, c.args...)
		if code != 2 || out != "" || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.args, code, out, errs, c.want)
		}
	}
	// A mistyped flag too, wherever the command reads its flags.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"webhooks", "create", "--event", "batch.succeeded", "--uri", "https://x"}, `flag provided but not defined: -event (did you mean "--events"?)`},
		{[]string{"serve", "--data-dr", dir}, `-data-dr (did you mean "--data-dir"?)`},
		{[]string{"keys", "create", "--projet", "p", "--data-dir", dir}, `-projet (did you mean "--project"?)`},
		{[]string{"webhooks", "list", "--jsn"}, `-jsn (did you mean "--json"?)`},
		// The receiving edge's commands read their flags the same way.
		{[]string{"listen", "--form", "http://127.0.0.1:1/x"}, `-form (did you mean "--from"?)`},
		{[]string{"gateway", "--cofig", "g.yaml"}, `-cofig (did you mean "--config"?)`},
		{[]string{"check", "--secrt", "whsec_x", "http://127.0.0.1:1/"}, `-secrt (did you mean "--secret"?)`},
	} {
		code, _, errs := run(t, nil, c.args...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 and %q", c.args, code, firstLines(errs, 2), c.want)
		}
	}
	code, _, errs := run(t, nil, "frobnicate")
	if code != 2 || strings.Contains(errs, "did you mean") || !strings.Contains(errs, "Commands:") {
		t.Errorf("frobnicate: exit %d, %q; want the command list and no guess", code, errs)
	}
}
