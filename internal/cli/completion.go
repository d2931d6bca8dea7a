package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// completionTree is what the shell completions offer: commands, the verbs
// of the client commands, and trigger's sample types.
func completionTree() (cmds []string, subs map[string][]string) {
	for _, c := range commands() {
		cmds = append(cmds, c.name)
	}
	subs = map[string][]string{
		"webhooks":   {"list", "get", "create", "update", "delete", "ping", "rotate", "enable", "disable"},
		"events":     {"publish", "get", "list"},
		"deliveries": {"list", "get", "redeliver", "recover", "tail"},
		"completion": {"bash", "zsh", "fish"},
		"trigger":    sampleTypes(),
	}
	return cmds, subs
}

// clientFlags are offered after any client command.
const clientFlags = "--server --api-key --data-dir --json --help"

// runCompletion is `longhook completion bash|zsh|fish`.
func runCompletion(_ context.Context, args []string, env Env) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: completion takes one shell: bash, zsh or fish, e.g. source <(longhook completion bash)", errUsage)
	}
	cmds, subs := completionTree()
	keys := make([]string, 0, len(subs))
	for k := range subs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	switch args[0] {
	case "bash", "zsh":
		if args[0] == "zsh" {
			b.WriteString("#compdef longhook\nautoload -U +X bashcompinit && bashcompinit\n")
		}
		b.WriteString("# longhook completion: source <(longhook completion " + args[0] + ")\n")
		b.WriteString("_longhook() {\n  local cur=${COMP_WORDS[COMP_CWORD]} words=\"\"\n")
		b.WriteString("  if [[ $cur == -* ]]; then words=\"" + clientFlags + "\"\n")
		b.WriteString("  elif [[ $COMP_CWORD -eq 1 ]]; then words=\"" + strings.Join(cmds, " ") + "\"\n")
		b.WriteString("  elif [[ $COMP_CWORD -eq 2 ]]; then\n    case ${COMP_WORDS[1]} in\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "      %s) words=%q ;;\n", k, strings.Join(subs[k], " "))
		}
		b.WriteString("    esac\n  fi\n  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\ncomplete -F _longhook longhook\n")
	case "fish":
		b.WriteString("# longhook completion: longhook completion fish | source\n")
		b.WriteString("complete -c longhook -f\n")
		fmt.Fprintf(&b, "complete -c longhook -n '__fish_use_subcommand' -a '%s'\n", strings.Join(cmds, " "))
		for _, k := range keys {
			fmt.Fprintf(&b, "complete -c longhook -n '__fish_seen_subcommand_from %s; and test (count (commandline -opc)) -eq 2' -a '%s'\n",
				k, strings.Join(subs[k], " "))
		}
		for _, fl := range strings.Fields(clientFlags) {
			fmt.Fprintf(&b, "complete -c longhook -l %s\n", strings.TrimPrefix(fl, "--"))
		}
	default:
		return fmt.Errorf("%w: completion: unknown shell %q (bash, zsh or fish)", errUsage, args[0])
	}
	_, err := fmt.Fprint(env.Stdout, b.String())
	return err
}
