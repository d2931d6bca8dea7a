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
		{"migrate", "apply or show database migrations (PostgreSQL)", runMigrate},
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
		{"version", "print the version", func(_ context.Context, _ []string, env Env) error {
			fmt.Fprintln(env.Stdout, "longhook", Version)
			return nil
		}},
	}
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
	return &flagSet{envflag.New(name, env.Getenv, env.Stderr)}
}

func (fs *flagSet) parse(args []string) error     { return fs.Parse(args) }
func (fs *flagSet) parseOnly(args []string) error { return fs.ParseOnly(args) }
func (fs *flagSet) fillFromEnv() error            { return fs.FillFromEnv() }
