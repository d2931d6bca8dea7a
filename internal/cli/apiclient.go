package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/longhook/longhook/client"
	"github.com/longhook/longhook/internal/envflag"
)

// Exit codes of the client commands (webhooks, events, deliveries,
// trigger). 0 is success, 2 a command-line mistake, as for every command.
const (
	exitFailure     = 1 // the server failed (5xx) or something else went wrong
	exitUsage       = 2 // bad flags or arguments
	exitUnreachable = 3 // no server answered at --server
	exitAuth        = 4 // 401/403: missing, wrong or revoked key; not an admin key
	exitNotFound    = 5 // 404: no such webhook, event or delivery in this project
	exitRejected    = 6 // 400: the server rejected the request (its message says why)
)

// exitError carries an exit code other than 1 out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// clientErr turns a client error into words and an exit code.
func clientErr(err error) error {
	var apiErr *client.Error
	var netErr *net.OpError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &apiErr):
		code := exitFailure
		switch apiErr.Code {
		case 401, 403:
			code = exitAuth
		case 404:
			code = exitNotFound
		case 400, 409, 413:
			code = exitRejected
		}
		return &exitError{code: code, err: fmt.Errorf("server: %s", apiErr.Message+" ("+apiErr.Status+")")}
	case errors.As(err, &netErr) && netErr.Op == "dial":
		return &exitError{code: exitUnreachable, err: fmt.Errorf("cannot reach the server: %v (is `longhook serve` running? set --server or LONGHOOK_SERVER)", netErr.Err)}
	}
	return err
}

// apiFlags are the flags every client command takes.
type apiFlags struct {
	server  string
	apiKey  string
	dataDir string
	json    bool
	timeout time.Duration
}

func addAPIFlags(fs *flagSet) *apiFlags {
	f := &apiFlags{}
	fs.StringVar(&f.server, "server", client.DefaultServer, "URL of the longhook server")
	fs.StringVar(&f.apiKey, "api-key", "", "API key (default: the api-key file in --data-dir)")
	fs.StringVar(&f.dataDir, "data-dir", "./longhook-data", "data directory whose api-key file is the default key")
	fs.BoolVar(&f.json, "json", false, "print JSON for scripts instead of tables")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "how long to wait for the server to accept the connection and to start answering (deliveries tail then follows until Ctrl-C)")
	return f
}

// client builds the API client; the key defaults to the data dir's
// api-key file (written by serve on first start).
func (f *apiFlags) client() (*client.Client, error) {
	key := f.apiKey
	if key == "" {
		data, err := os.ReadFile(filepath.Join(f.dataDir, "api-key"))
		if err != nil {
			return nil, fmt.Errorf("%w: no API key: pass --api-key or set LONGHOOK_API_KEY (or run where %s holds serve's api-key file)",
				errUsage, f.dataDir)
		}
		key = strings.TrimSpace(string(data))
	}
	if f.timeout <= 0 {
		return nil, fmt.Errorf("%w: --timeout must be positive, got %s", errUsage, f.timeout)
	}
	c, err := client.New(f.server, key, client.WithUserAgent("longhook-cli/"+Version), client.WithHTTPClient(f.httpClient()))
	if err != nil {
		return nil, fmt.Errorf("%w: --server: %v", errUsage, err)
	}
	return c, nil
}

// parseArgs parses flags anywhere among the arguments (Go's flag package
// stops at the first positional one) and returns the positional ones,
// checking there are between minArgs and maxArgs of them (maxArgs < 0: no
// limit).
func parseArgs(fs *flagSet, args []string, minArgs, maxArgs int, names string) ([]string, error) {
	var pos []string
	rest := args
	for {
		if err := fs.parseOnly(rest); err != nil {
			return nil, err
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		rest = rest[1:]
	}
	if err := fs.fillFromEnv(); err != nil {
		return nil, err
	}
	if len(pos) < minArgs || maxArgs >= 0 && len(pos) > maxArgs {
		for i, a := range args {
			if (a == "true" || a == "false") && i > 0 && isBoolFlag(fs, args[i-1]) {
				// "--dev false" is the flag --dev (true) and an argument.
				return nil, fmt.Errorf("%w: %s takes %s, got %q: a boolean flag takes its value after =, as in %s=%s",
					errUsage, fs.Name(), names, a, args[i-1], a)
			}
		}
		return nil, fmt.Errorf("%w: %s takes %s, got %q", errUsage, fs.Name(), names, strings.Join(pos, " "))
	}
	return pos, nil
}

// isBoolFlag reports whether arg ("--dev") names a boolean flag of fs
// given without a value.
func isBoolFlag(fs *flagSet, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if name == arg || strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// checkPageSize refuses a --page-size the API would refuse (negative) or
// silently cut to its maximum: a usage error, before any request.
func checkPageSize(n int) error {
	if n < 0 || n > 1000 {
		return fmt.Errorf("%w: --page-size must be 1 to 1000 (0: the server's default), got %d", errUsage, n)
	}
	return nil
}

// printJSON writes v indented, for --json.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table writes rows aligned in columns; the first row is the header.
func table(w io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// listView is how a list command shows a page of T without --json.
type listView[T any] struct {
	none   string           // the line for an empty page
	header []string         // the table's first row
	row    func(T) []string // one item's row
	more   string           // said after the next page's token, e.g. ", or --all for every page"
}

// showPage prints a list command's page: with --json the page as it is
// (its items, at items, an empty array rather than null), else v's table of
// the items and the token of the next page, if any (next).
func showPage[T any](w io.Writer, asJSON bool, page any, items *[]T, next string, v listView[T]) error {
	if *items == nil {
		*items = []T{}
	}
	if asJSON {
		return printJSON(w, page)
	}
	if len(*items) == 0 {
		fmt.Fprintln(w, v.none)
		return nil
	}
	rows := [][]string{v.header}
	for _, it := range *items {
		rows = append(rows, v.row(it))
	}
	if err := table(w, rows); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(w, "(more: --page-token %s%s)\n", next, v.more)
	}
	return nil
}

// isTerminal reports whether stream (a reader or writer) is a terminal:
// colours and progress bars only go there.
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// httpClient is the client commands' HTTP client: without a deadline of
// its own (deliveries tail streams for as long as it runs), but one that
// gives up on a server that does not accept the connection, finish the TLS
// handshake or start its answer within --timeout. Without it, a --server
// that accepted the connection and then said nothing (a stuck process, a
// wrong port behind a load balancer) left the command hanging for ever.
func (f *apiFlags) httpClient() *http.Client {
	dialer := &net.Dialer{Timeout: f.timeout, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   f.timeout,
		ResponseHeaderTimeout: f.timeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		IdleConnTimeout:       30 * time.Second,
	}}
}

// clientCommand runs fn with a client and maps its errors to exit codes.
func clientCommand(ctx context.Context, f *apiFlags, fn func(ctx context.Context, c *client.Client) error) error {
	c, err := f.client()
	if err != nil {
		return err
	}
	err = fn(ctx, c)
	var urlErr *url.Error
	var netErr *net.OpError
	if errors.As(err, &urlErr) && urlErr.Timeout() && ctx.Err() == nil && !(errors.As(err, &netErr) && netErr.Op == "dial") {
		return &exitError{code: exitUnreachable, err: fmt.Errorf("no answer from the server at %s within %s (--timeout): is it a longhook serve, and is it running well?", f.server, f.timeout)}
	}
	return clientErr(err)
}

// idCommand is a client command (name, e.g. "webhooks get") that takes
// one id (of what, e.g. "webhook") and the API flags: run does the rest
// with the client, the id and whether --json was given.
func idCommand(name, what string, run func(ctx context.Context, c *client.Client, env Env, id string, asJSON bool) error) func(context.Context, []string, Env) error {
	return func(ctx context.Context, args []string, env Env) error {
		fs := newFlagSet(name, env)
		f := addAPIFlags(fs)
		pos, err := parseArgs(fs, args, 1, 1, "one "+what+" id")
		if err != nil {
			return err
		}
		return clientCommand(ctx, f, func(ctx context.Context, c *client.Client) error {
			return run(ctx, c, env, pos[0], f.json)
		})
	}
}

// subcommand is one verb of a client command.
type subcommand struct {
	name, summary string
	run           func(ctx context.Context, args []string, env Env) error
}

// runSubcommand dispatches args[0] among subs.
func runSubcommand(ctx context.Context, group string, subs []subcommand, args []string, env Env) error {
	if err := checkVerb(group, subs, true, args, env); err != nil {
		return err
	}
	for _, s := range subs {
		if s.name == args[0] {
			env.verb = s.summary
			return s.run(ctx, args[1:], env)
		}
	}
	return nil // checkVerb found it
}

// withVerb is env for running verb of subs (its -h tells what it does).
func withVerb(env Env, subs []subcommand, verb string) Env {
	for _, s := range subs {
		if s.name == verb {
			env.verb = s.summary
		}
	}
	return env
}

// checkVerb checks args[0] against the verbs of a command group before
// anything runs: with -h, --help or help (or nothing) it prints the verbs
// and returns flag.ErrHelp (exit 0; errUsage, exit 2, when args is
// empty); an unknown verb is a usage error. client adds the exit codes of
// commands that talk to a server.
func checkVerb(group string, subs []subcommand, client bool, args []string, env Env) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		var b strings.Builder
		fmt.Fprintf(&b, "Usage: longhook %s <command> [flags]\n\nCommands:\n", group)
		for _, s := range subs {
			fmt.Fprintf(&b, "  %-10s %s\n", s.name, s.summary)
		}
		fmt.Fprintf(&b, "\nRun 'longhook %s <command> -h' for its flags.", group)
		if client {
			b.WriteString(" Exit codes: 0 ok, 1 failure, 2 usage or configuration\nerror, 3 server unreachable, 4 not authorized, 5 not found, 6 rejected by the server.")
		}
		b.WriteString("\n")
		fmt.Fprint(env.Stderr, b.String())
		if len(args) == 0 {
			return errUsage
		}
		return flag.ErrHelp
	}
	for _, s := range subs {
		if s.name == args[0] {
			return nil
		}
	}
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.name
	}
	return fmt.Errorf("%w: unknown command %q for longhook %s%s (run 'longhook %s -h')", errUsage, args[0], group, envflag.DidYouMean(args[0], names), group)
}
