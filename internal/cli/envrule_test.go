package cli

import (
	"regexp"
	"strings"
	"testing"

	"github.com/longhook/longhook/internal/envflag"
)

var (
	flagLine = regexp.MustCompile(`^  -([a-z0-9-]+)`)
	verbLine = regexp.MustCompile(`^  ([a-z]+) {2,}`)
)

// flagUsages runs `longhook args... -h` and returns each flag's usage
// text, and the verbs when args name a command with verbs.
func flagUsages(t *testing.T, args ...string) (flags map[string]string, verbs []string) {
	t.Helper()
	_, out, errs := run(t, nil, append(args, "-h")...)
	flags = map[string]string{}
	cur, inVerbs := "", false
	for _, line := range strings.Split(out+errs, "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			cur = m[1]
			flags[cur] = line
			continue
		}
		if strings.HasPrefix(line, "Commands:") {
			inVerbs = true
			continue
		}
		if m := verbLine.FindStringSubmatch(line); m != nil && inVerbs {
			verbs = append(verbs, m[1])
			continue
		}
		if cur != "" && strings.HasPrefix(line, "    ") {
			flags[cur] += line
		} else {
			cur = ""
		}
	}
	return flags, verbs
}

// TestEveryFlagFollowsTheEnvRule walks every command (and every verb of a
// command with verbs, and bench --gateway): each flag in its -h output
// must name its variable as the one rule does (--foo-bar →
// LONGHOOK_FOO_BAR), which only an envflag flag set prints — a command
// given a plain flag set, or a flag read from a variable of another name,
// fails here.
func TestEveryFlagFollowsTheEnvRule(t *testing.T) {
	t.Parallel()
	var targets [][]string
	for _, c := range commands() {
		if c.name == "version" || c.name == "completion" {
			continue // no flags
		}
		targets = append(targets, []string{c.name})
	}
	targets = append(targets, []string{"bench", "--gateway"})
	checked := 0
	for len(targets) > 0 {
		args := targets[0]
		targets = targets[1:]
		flags, verbs := flagUsages(t, args...)
		for _, v := range verbs {
			targets = append(targets, append(append([]string{}, args...), v))
		}
		if len(flags) == 0 && len(verbs) == 0 {
			t.Errorf("longhook %s -h lists no flags and no verbs", strings.Join(args, " "))
		}
		for name, usage := range flags {
			checked++
			if want := "[$" + envflag.Name(name) + "]"; !strings.Contains(usage, want) {
				t.Errorf("longhook %s: --%s does not fall back to %s: %q", strings.Join(args, " "), name, envflag.Name(name), usage)
			}
		}
	}
	if checked < 100 {
		t.Errorf("only %d flags found; the -h parsing is broken", checked)
	}
}

// TestDeprecatedEnvAliases: the variables gateway, listen, check and bench
// --gateway documented before the rule still work, with a one-line warning
// naming the new variable; the rule's names work without one.
func TestDeprecatedEnvAliases(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	cases := []struct {
		old, new, value string
		args            []string
		effect          string // in stderr: the value was used
	}{
		{"LONGHOOK_GATEWAY_CONFIG", "LONGHOOK_CONFIG", "/nonexistent/gw.yaml", []string{"gateway"}, "/nonexistent/gw.yaml"},
		{"LONGHOOK_LISTEN_FROM", "LONGHOOK_FROM", "ftp://old", []string{"listen"}, `--from "ftp://old"`},
		{"LONGHOOK_LISTEN_FORWARD_TO", "LONGHOOK_FORWARD_TO", "ftp://old", []string{"listen", "--from", "http://127.0.0.1:1/x"}, `--forward-to "ftp://old"`},
		{"LONGHOOK_CHECK_SECRET", "LONGHOOK_SECRET", secret, []string{"check", "http://127.0.0.1:1/hook"}, "cannot reach the receiver"},
		{"LONGHOOK_BENCH_DIR", "LONGHOOK_DATA_DIR", "/nonexistent", []string{"bench", "--gateway", "-n", "0"}, "must be positive"},
	}
	for _, c := range cases {
		t.Run(c.old, func(t *testing.T) {
			t.Parallel()
			_, _, errs := run(t, map[string]string{c.old: c.value}, c.args...)
			if !strings.Contains(errs, c.effect) {
				t.Errorf("%s not used: %q", c.old, errs)
			}
			if !strings.Contains(errs, c.old) || !strings.Contains(errs, c.new) || !strings.Contains(errs, "deprecated") {
				t.Errorf("no warning naming %s and %s: %q", c.old, c.new, errs)
			}
			_, _, errs = run(t, map[string]string{c.new: c.value}, c.args...)
			if !strings.Contains(errs, c.effect) {
				t.Errorf("%s not used: %q", c.new, errs)
			}
			if strings.Contains(errs, "deprecated") {
				t.Errorf("a warning for the rule's own name: %q", errs)
			}
		})
	}
}
