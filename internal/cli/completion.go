package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// completionTree is what the shell completions offer: commands, the verbs
// of the commands that take one, and trigger's sample types.
func completionTree() (cmds []string, subs map[string][]string) {
	for _, c := range commands() {
		cmds = append(cmds, c.name)
	}
	subs = map[string][]string{
		"webhooks":   {"list", "get", "create", "update", "delete", "ping", "rotate", "enable", "disable"},
		"events":     {"publish", "get", "list"},
		"deliveries": {"list", "get", "redeliver", "recover", "tail"},
		"projects":   {"create", "list"},
		"keys":       {"create", "list", "revoke"},
		"migrate":    {"up", "status"},
		"jwks":       {"rotate", "list"},
		"master-key": {"rotate", "new", "reseal"},
		"completion": {"bash", "zsh", "fish"},
		"trigger":    sampleTypes(),
	}
	return cmds, subs
}

// flagLineRE matches a flag in the flag package's usage text ("  -addr string").
var flagLineRE = regexp.MustCompile(`(?m)^  -([A-Za-z0-9][\w-]*)`)

// completionFlags maps a command ("serve") or a command and its verb
// ("deliveries recover") to the flags it takes, as "--name" words. They
// are read from each command's own -h, so completion offers exactly what
// the command accepts (serve's --addr, not the client commands' --server).
func completionFlags(cmds []string, subs map[string][]string) map[string][]string {
	out := map[string][]string{}
	read := func(args ...string) {
		var b bytes.Buffer
		env := Env{Getenv: func(string) string { return "" }, Stdin: strings.NewReader(""), Stdout: &b, Stderr: &b}
		Run(context.Background(), append(args, "-h"), env)
		var words []string
		for _, m := range flagLineRE.FindAllStringSubmatch(b.String(), -1) {
			words = append(words, "--"+m[1])
		}
		if len(words) > 0 {
			out[strings.Join(args, " ")] = append(words, "--help")
		}
	}
	for _, c := range cmds {
		verbs, ok := subs[c]
		if !ok || c == "trigger" {
			if c != "completion" {
				read(c)
			}
			continue
		}
		for _, v := range verbs {
			read(c, v)
		}
	}
	return out
}

const completionUsage = `Usage: longhook completion bash|zsh|fish

Prints the shell completion script: commands, their verbs, trigger's event types and each command's flags.
  bash:  source <(longhook completion bash)
  zsh:   source <(longhook completion zsh)
  fish:  longhook completion fish | source
`

// runCompletion is `longhook completion bash|zsh|fish`.
func runCompletion(_ context.Context, args []string, env Env) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprint(env.Stderr, completionUsage)
		return flag.ErrHelp
	}
	if len(args) != 1 {
		return fmt.Errorf("%w: completion takes one shell: bash, zsh or fish, e.g. source <(longhook completion bash)", errUsage)
	}
	switch args[0] {
	case "bash", "zsh", "fish":
	default:
		return fmt.Errorf("%w: completion: unknown shell %q (bash, zsh or fish)", errUsage, args[0])
	}
	cmds, subs := completionTree()
	flags := completionFlags(cmds, subs)
	var b strings.Builder
	if args[0] == "fish" {
		writeFish(&b, cmds, subs, flags)
	} else {
		writeBash(&b, args[0], cmds, subs, flags)
	}
	_, err := fmt.Fprint(env.Stdout, b.String())
	return err
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// writeBash writes the bash (or zsh, through bashcompinit) completion: a
// flag is completed from "command verb" when the second word is a verb of
// the command, else from the command alone.
func writeBash(b io.StringWriter, shell string, cmds []string, subs, flags map[string][]string) {
	if shell == "zsh" {
		b.WriteString("#compdef longhook\nautoload -U +X bashcompinit && bashcompinit\n")
	}
	b.WriteString("# longhook completion: source <(longhook completion " + shell + ")\n")
	b.WriteString("_longhook() {\n  local cur=${COMP_WORDS[COMP_CWORD]} words=\"\"\n")
	b.WriteString("  if [[ $cur == -* ]]; then\n    case \"${COMP_WORDS[1]} ${COMP_WORDS[2]}\" in\n")
	var single []string
	for _, k := range sortedKeys(flags) {
		if !strings.Contains(k, " ") {
			single = append(single, k)
			continue
		}
		b.WriteString(fmt.Sprintf("      %q) words=%q ;;\n", k, strings.Join(flags[k], " ")))
	}
	b.WriteString("      *) case ${COMP_WORDS[1]} in\n")
	for _, k := range single {
		b.WriteString(fmt.Sprintf("           %s) words=%q ;;\n", k, strings.Join(flags[k], " ")))
	}
	b.WriteString("         esac ;;\n    esac\n")
	b.WriteString("  elif [[ $COMP_CWORD -eq 1 ]]; then words=\"" + strings.Join(cmds, " ") + "\"\n")
	b.WriteString("  elif [[ $COMP_CWORD -eq 2 ]]; then\n    case ${COMP_WORDS[1]} in\n")
	for _, k := range sortedKeys(subs) {
		b.WriteString(fmt.Sprintf("      %s) words=%q ;;\n", k, strings.Join(subs[k], " ")))
	}
	b.WriteString("    esac\n  fi\n  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\ncomplete -F _longhook longhook\n")
}

// writeFish writes the fish completion: each flag only after the command
// (and verb) that takes it.
func writeFish(b io.StringWriter, cmds []string, subs, flags map[string][]string) {
	b.WriteString("# longhook completion: longhook completion fish | source\n")
	b.WriteString("complete -c longhook -f\n")
	b.WriteString(fmt.Sprintf("complete -c longhook -n '__fish_use_subcommand' -a '%s'\n", strings.Join(cmds, " ")))
	for _, k := range sortedKeys(subs) {
		b.WriteString(fmt.Sprintf("complete -c longhook -n '__fish_seen_subcommand_from %s; and test (count (commandline -opc)) -eq 2' -a '%s'\n",
			k, strings.Join(subs[k], " ")))
	}
	for _, k := range sortedKeys(flags) {
		cmd, verb, ok := strings.Cut(k, " ")
		cond := "__fish_seen_subcommand_from " + cmd
		if ok {
			cond += "; and __fish_seen_subcommand_from " + verb
		}
		for _, fl := range flags[k] {
			b.WriteString(fmt.Sprintf("complete -c longhook -n '%s' -l %s\n", cond, strings.TrimPrefix(fl, "--")))
		}
	}
}
