// Package cli is longhook's command tree and composition root: it parses
// flags (with LONGHOOK_* environment fallbacks), picks the store driver from
// the database URL, wires the API, the publisher, the delivery engine and
// the periodic work together, and runs them until a signal arrives.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/longhook/longhook/internal/envflag"
)

// Version is the release version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Env gives access to the process environment (injected for tests).
type Env struct {
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	// verb is the summary of the verb being run ("show one webhook: get
	// ID"), set by the group's dispatch so that the verb's -h can open
	// with what it does and takes (verbUsage).
	verb string
}

// errUsage marks a command-line mistake (exit code 2).
var errUsage = envflag.ErrUsage

// errConfig marks a bad environment value (a LONGHOOK_* variable, the
// OpenTelemetry ones): the command line may be fine, but the start is
// refused all the same, before anything is created, with exit code 2.
var errConfig = envflag.ErrConfig

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, env Env) error
}

func commands() []command {
	return []command{
		{"serve", "run the webhook server (API, delivery engine, jobs)", runServe},
		{"projects", "create or list projects (on the data dir or database)", runProjects},
		{"keys", "create, list or revoke API keys", runKeys},
		{"migrate", "apply or show database migrations (PostgreSQL; SQLite migrates itself on open)", runMigrate},
		{"jwks", "rotate or list the JWT signing keys of dynamic webhooks", runJWKS},
		{"master-key", "rotate the master key that seals secrets: rotate, new, reseal", runMasterKey},
		{"gateway", "run the receiving edge: verify, deduplicate, store, forward (--config gateway.yaml)", runGateway},
		{"listen", "relay a serve webhook's or a gateway source's events to a local URL over an outbound connection", runListen},
		{"check", "test a receiver for correct verification, replay rejection and deduplication", runCheck},
		{"bench", "measure throughput against the bare-HTTP ceiling (--gateway, --dynamic, --instances)", runBench},
		{"webhooks", "manage webhooks over the API: list, get, create, update, delete, ping, rotate, enable, disable", runWebhooks},
		{"events", "publish, get and list events over the API", runEvents},
		{"deliveries", "list, get, redeliver, recover deliveries; tail follows them live", runDeliveries},
		{"trigger", "publish a realistic sample event of a type (like stripe trigger)", runTrigger},
		{"completion", "print shell completion for bash, zsh or fish", runCompletion},
		{"version", "print the version", runVersion},
	}
}

// runVersion is `longhook version`. It takes nothing: "version --json"
// printed the text line to a script that asked for JSON.
func runVersion(_ context.Context, args []string, env Env) error {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "--help" {
			fmt.Fprintln(env.Stderr, "Usage: longhook version\n\nPrints the version: longhook VERSION.")
			return flag.ErrHelp
		}
		return fmt.Errorf("%w: version takes no arguments or flags, got %q", errUsage, strings.Join(args, " "))
	}
	fmt.Fprintln(env.Stdout, "longhook", Version)
	return nil
}

// Run executes the command line args (without the program name) and
// returns the process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], env)
			var exit *exitError
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage), errors.Is(err, errConfig):
				fmt.Fprintln(env.Stderr, "longhook:", err)
				return 2
			case errors.As(err, &exit):
				fmt.Fprintln(env.Stderr, "longhook:", err)
				return exit.code
			default:
				fmt.Fprintln(env.Stderr, "longhook:", err)
				return 1
			}
		}
	}
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	if hint := envflag.DidYouMean(args[0], names); hint != "" {
		// A near miss names the command; the whole list would bury it.
		fmt.Fprintf(env.Stderr, "longhook: unknown command %q%s\nRun 'longhook help' for the commands.\n", args[0], hint)
		return 2
	}
	fmt.Fprintf(env.Stderr, "longhook: unknown command %q\n", args[0])
	usage(env.Stderr)
	return 2
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("longhook — webhooks for long-running AI jobs\n\nUsage: longhook <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-11s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'longhook <command> -h' for the flags of a command.\n")
	b.WriteString("Exit codes: 0 ok, 1 failure, 2 usage or configuration error; client commands also 3 server unreachable,\n4 not authorized, 5 not found, 6 rejected by the server (its message says why).\n")
	fmt.Fprint(w, b.String())
}

// flagSet is an envflag.FlagSet: every flag falls back to its LONGHOOK_*
// variable (envflag.Name).
type flagSet struct{ *envflag.FlagSet }

func newFlagSet(name string, env Env) *flagSet {
	fs := &flagSet{envflag.New(name, env.Getenv, env.Stderr)}
	synopsis, what := verbUsage(name, env.verb)
	fs.Describe(synopsis, what)
	return fs
}

// verbUsage turns a verb's summary, "show one webhook: get ID", into the
// synopsis "longhook webhooks get ID [flags]" and the sentence "Show one
// webhook."; a summary without arguments after a colon gives
// "longhook NAME [flags]". With no summary (serve, bench), what is "".
func verbUsage(name, summary string) (synopsis, what string) {
	verb := name[strings.LastIndex(name, " ")+1:]
	what, args := summary, ""
	if i := strings.LastIndex(summary, ": "); i >= 0 {
		what, args = summary[:i], summary[i+2:]
	} else if i := strings.Index(summary, " ["); i >= 0 {
		what, args = summary[:i], summary[i+1:]
	}
	args = strings.TrimPrefix(strings.TrimPrefix(args, verb), " ")
	synopsis = "longhook " + name
	if args != "" {
		synopsis += " " + args
	}
	synopsis += " [flags]"
	if what != "" {
		what = strings.ToUpper(what[:1]) + what[1:] + "."
	}
	return synopsis, what
}

func (fs *flagSet) parse(args []string) error     { return fs.Parse(args) }
func (fs *flagSet) parseOnly(args []string) error { return fs.ParseOnly(args) }
func (fs *flagSet) fillFromEnv() error            { return fs.FillFromEnv() }
