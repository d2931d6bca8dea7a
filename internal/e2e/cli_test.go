package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// The client commands (webhooks, events, deliveries, trigger) against a
// real serve: each in its human and its --json form, with their exit codes.

// cliResult is one finished client command.
type cliResult struct {
	stdout, stderr string
	code           int
}

// cliEnv runs client commands against one server with one key.
type cliEnv struct {
	server, key string
}

func (e cliEnv) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LONGHOOK_") && !strings.HasPrefix(kv, "NO_COLOR") {
			env = append(env, kv)
		}
	}
	return append(env, "LONGHOOK_SERVER="+e.server, "LONGHOOK_API_KEY="+e.key)
}

// try runs `longhook args...` with stdin and returns what it printed and
// its exit code.
func (e cliEnv) try(t testing.TB, stdin string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(longhookBin, args...)
	cmd.Env = e.environ()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("longhook %s: %v", strings.Join(args, " "), err)
	}
	return cliResult{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// run runs a command that must succeed and returns its stdout.
func (e cliEnv) run(t testing.TB, args ...string) string {
	t.Helper()
	r := e.try(t, "", args...)
	if r.code != 0 {
		t.Fatalf("longhook %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// json runs a command with --json that must succeed and decodes its output.
func (e cliEnv) json(t testing.TB, out any, args ...string) {
	t.Helper()
	stdout := e.run(t, append(args, "--json")...)
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		t.Fatalf("longhook %s --json: %v:\n%s", strings.Join(args, " "), err, stdout)
	}
}

// fails runs a command that must exit with code and say want on stderr.
func (e cliEnv) fails(t testing.TB, code int, want string, args ...string) {
	t.Helper()
	r := e.try(t, "", args...)
	if r.code != code || !strings.Contains(r.stderr, want) {
		t.Fatalf("longhook %s: exit %d, stderr %q; want exit %d and %q", strings.Join(args, " "), r.code, r.stderr, code, want)
	}
}

// mustContain fails unless s holds every fragment.
func mustContain(t testing.TB, what, s string, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		if !strings.Contains(s, f) {
			t.Fatalf("%s lacks %q:\n%s", what, f, s)
		}
	}
}

// newCLI runs client commands against s through a proxy that validates
// every exchange against docs/openapi.json (openapi_test.go).
func newCLI(t testing.TB, s *serveProc) cliEnv {
	return cliEnv{server: validatingServer(t, s.URL()), key: s.APIKey}
}

// field reads "name:  value" from human output.
func field(t testing.TB, out, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `:\s+(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q line in:\n%s", name, out)
	}
	return m[1]
}

type cliWebhook struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	URI              string   `json:"uri"`
	State            string   `json:"state"`
	SubscribedEvents []string `json:"subscribed_events"`
	NewSigningSecret string   `json:"new_signing_secret"`
	SigningSecrets   []struct {
		TruncatedSecret string `json:"truncated_secret"`
	} `json:"signing_secrets"`
}

func TestCLIWebhooks(t *testing.T) {
	t.Parallel()
	requireNode(t)
	s := startServe(t)
	cli := newCLI(t, s)
	rcv := newReceiver(t, nil)

	out := cli.run(t, "webhooks", "create", "--name", "nightly", "--uri", rcv.URL("/a"), "--events", "batch.succeeded,batch.failed")
	mustContain(t, "create", out, "name:     nightly", "state:    enabled", "events:   batch.succeeded, batch.failed", "Signing secret (shown once")
	id := field(t, out, "id")
	secret := regexp.MustCompile(`whsec_\S+`).FindAllString(out, -1)
	if len(secret) != 2 || strings.Contains(secret[1], "...") {
		t.Fatalf("create: want the truncated and the whole secret:\n%s", out)
	}
	var b cliWebhook
	cli.json(t, &b, "webhooks", "create", "--uri", rcv.URL("/b"), "--events", "video.generated")
	if b.ID == "" || b.NewSigningSecret == "" || b.State != "enabled" || !slices.Equal(b.SubscribedEvents, []string{"video.generated"}) {
		t.Fatalf("create --json: %+v", b)
	}

	out = cli.run(t, "webhooks", "list")
	mustContain(t, "list", out, "ID", "NAME", "STATE", id, "nightly", b.ID, rcv.URL("/b"))
	var page struct {
		Webhooks []cliWebhook `json:"webhooks"`
	}
	cli.json(t, &page, "webhooks", "list")
	if len(page.Webhooks) != 2 {
		t.Fatalf("list --json: %+v", page)
	}
	// Page by page, as events and deliveries list page: --json gives the
	// next_page_token, --page-token takes it (the human table names it).
	var first, second struct {
		Webhooks      []cliWebhook `json:"webhooks"`
		NextPageToken string       `json:"next_page_token"`
	}
	cli.json(t, &first, "webhooks", "list", "--page-size", "1")
	if len(first.Webhooks) != 1 || first.NextPageToken == "" {
		t.Fatalf("list --page-size 1 --json: %+v", first)
	}
	mustContain(t, "list --page-size 1", cli.run(t, "webhooks", "list", "--page-size", "1"), "--page-token "+first.NextPageToken)
	cli.json(t, &second, "webhooks", "list", "--page-size", "1", "--page-token", first.NextPageToken)
	if len(second.Webhooks) != 1 || second.Webhooks[0].ID == first.Webhooks[0].ID || second.NextPageToken != "" {
		t.Fatalf("list --page-token: %+v after %+v", second, first)
	}
	mustContain(t, "get", cli.run(t, "webhooks", "get", id), "id:       "+id, "uri:      "+rcv.URL("/a"))
	var got cliWebhook
	cli.json(t, &got, "webhooks", "get", id)
	if got.ID != id || got.Name != "nightly" || got.NewSigningSecret != "" {
		t.Fatalf("get --json: %+v", got)
	}

	mustContain(t, "update", cli.run(t, "webhooks", "update", id, "--name", "renamed"), "name:     renamed", "uri:      "+rcv.URL("/a"))
	cli.json(t, &got, "webhooks", "update", id, "--events", "batch.failed")
	if !slices.Equal(got.SubscribedEvents, []string{"batch.failed"}) || got.Name != "renamed" {
		t.Fatalf("update --json: %+v", got)
	}
	mustContain(t, "disable", cli.run(t, "webhooks", "disable", id), "Webhook "+id+" is disabled.")
	cli.json(t, &got, "webhooks", "enable", id)
	if got.State != "enabled" {
		t.Fatalf("enable --json: %+v", got)
	}
	mustContain(t, "enable", cli.run(t, "webhooks", "enable", b.ID), "is enabled.")
	cli.json(t, &got, "webhooks", "disable", b.ID)
	if got.State != "disabled" {
		t.Fatalf("disable --json: %+v", got)
	}

	// rotate: the new secret signs the ping, as three verifiers agree.
	out = cli.run(t, "webhooks", "rotate", id, "--revoke-now")
	mustContain(t, "rotate", out, "New signing secret (shown once)", "previous secrets are revoked")
	newSecret := regexp.MustCompile(`whsec_\S+`).FindString(out)
	mustContain(t, "ping", cli.run(t, "webhooks", "ping", id), "Queued a webhook.ping to "+id)
	ping := rcv.waitN(t, 1, 20*time.Second)
	if e := ping.envelope(t); e.Type != "webhook.ping" {
		t.Fatalf("ping delivered %s", e.Type)
	}
	verifyHMAC(t, ping, newSecret).requireVerified(t, "ping after rotate")
	var rotated, pinged map[string]string
	cli.json(t, &rotated, "webhooks", "rotate", b.ID)
	cli.json(t, &pinged, "webhooks", "ping", b.ID)
	if !strings.HasPrefix(rotated["secret"], "whsec_") || pinged["queued"] != "webhook.ping" {
		t.Fatalf("rotate/ping --json: %v %v", rotated, pinged)
	}

	mustContain(t, "delete", cli.run(t, "webhooks", "delete", id), "Deleted webhook "+id)
	var del map[string]any
	cli.json(t, &del, "webhooks", "delete", b.ID)
	if del["id"] != b.ID || del["deleted"] != true {
		t.Fatalf("delete --json: %v", del)
	}
	mustContain(t, "empty list", cli.run(t, "webhooks", "list"), "No webhooks.")

	// Errors: in words with the server's message, and an exit code each.
	cli.fails(t, 5, `server: webhook "`+id+`" not found (NOT_FOUND)`, "webhooks", "get", id)
	cli.fails(t, 6, `unknown event type "batch.done"`, "webhooks", "create", "--uri", rcv.URL("/c"), "--events", "batch.done")
	cli.fails(t, 2, "webhooks get takes one webhook id", "webhooks", "get")
	cli.fails(t, 2, "unknown command", "webhooks", "frobnicate")
	cliEnv{server: s.URL(), key: "wrong"}.fails(t, 4, "UNAUTHENTICATED", "webhooks", "list")
	cliEnv{server: "http://127.0.0.1:1", key: "k"}.fails(t, 3, "cannot reach the server", "webhooks", "list")
}

type cliEvent struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	DeliveryCount  int             `json:"delivery_count"`
	IdempotencyKey string          `json:"idempotency_key"`
	Data           json.RawMessage `json:"data"`
}

func TestCLIEvents(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	cli := newCLI(t, s)
	rcv := newReceiver(t, nil)
	cli.run(t, "webhooks", "create", "--uri", rcv.URL("/static"), "--events", "batch.succeeded")

	// Data from stdin, human output.
	r := cli.try(t, `{"id":"batches/1","output_file_uri":"files/1"}`, "events", "publish", "--type", "batch.succeeded")
	if r.code != 0 {
		t.Fatalf("publish from stdin: %d %s", r.code, r.stderr)
	}
	m := regexp.MustCompile(`^Published batch.succeeded (\S+) to 1 destination.\n$`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("publish: %q", r.stdout)
	}
	first := m[1]
	got := rcv.waitN(t, 1, 20*time.Second)
	if e := got.envelope(t); string(e.Data) != `{"id":"batches/1","output_file_uri":"files/1"}` {
		t.Fatalf("delivered data %s", e.Data)
	}

	// --data, --idempotency-key (the repeat answers the same event).
	var a, again cliEvent
	cli.json(t, &a, "events", "publish", "--type", "batch.succeeded", "--data", `{"id":"batches/2"}`, "--idempotency-key", "run-2")
	cli.json(t, &again, "events", "publish", "--type", "batch.succeeded", "--data", `{"id":"batches/2"}`, "--idempotency-key", "run-2")
	if a.ID == "" || again.ID != a.ID || a.DeliveryCount != 1 {
		t.Fatalf("idempotent publish: %+v then %+v", a, again)
	}
	// --webhook-uri: a dynamic webhook, JWT-signed, the static one not.
	var dyn cliEvent
	cli.json(t, &dyn, "events", "publish", "--type", "batch.succeeded", "--data", `{"id":"batches/3"}`, "--webhook-uri", rcv.URL("/dynamic"))
	reqs := rcv.waitFor(t, 20*time.Second, "the dynamic delivery", func(rs []received) bool {
		return slices.ContainsFunc(rs, func(r received) bool { return r.Header.Get("x-e2e-path") == "/dynamic" })
	})
	if dyn.DeliveryCount != 1 || strings.HasPrefix(reqs[len(reqs)-1].Header.Get("webhook-signature"), "v1,") {
		t.Fatalf("dynamic publish: %+v, signature %q", dyn, reqs[len(reqs)-1].Header.Get("webhook-signature"))
	}

	out := cli.run(t, "events", "get", a.ID)
	mustContain(t, "events get", out, "id:               "+a.ID, "idempotency key:  run-2", `"id": "batches/2"`)
	if out := cli.run(t, "events", "get", dyn.ID); !regexp.MustCompile(`(?m)^webhook uris:\s+` + regexp.QuoteMeta(rcv.URL("/dynamic")) + `$`).MatchString(out) {
		t.Fatalf("events get of a dynamic event lacks its uris:\n%s", out)
	}
	var ev cliEvent
	cli.json(t, &ev, "events", "get", first)
	var compact bytes.Buffer
	_ = json.Compact(&compact, ev.Data)
	if ev.ID != first || compact.String() != `{"id":"batches/1","output_file_uri":"files/1"}` {
		t.Fatalf("events get --json: %+v", ev)
	}
	out = cli.run(t, "events", "list")
	mustContain(t, "events list", out, "ID", "TYPE", "DELIVERIES", first, a.ID, dyn.ID, "run-2")
	var page struct {
		Events []cliEvent `json:"events"`
	}
	cli.json(t, &page, "events", "list", "--page-size", "2")
	if len(page.Events) != 2 || page.Events[0].ID != dyn.ID || page.Events[1].ID != a.ID {
		t.Fatalf("events list --json: %+v", page)
	}

	// A webhook_config with user_metadata alone went to the registered
	// webhook: no empty "webhook uris:" line.
	tagged := s.client(t).publish(t, map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": "batches/4"},
		"webhook_config": map[string]any{"user_metadata": map[string]any{"k": "v"}}})
	out = cli.run(t, "events", "get", tagged.ID)
	if !regexp.MustCompile(`(?m)^webhook config:\s+user_metadata only \(sent to the registered webhooks\)$`).MatchString(out) ||
		strings.Contains(out, "webhook uris:") {
		t.Fatalf("events get of a user_metadata-only event:\n%s", out)
	}
	cli.fails(t, 2, "--data must be a JSON object", "events", "publish", "--type", "batch.succeeded", "--data", "[1]")
	cli.fails(t, 2, "events publish needs --type", "events", "publish", "--data", "{}")
	cli.fails(t, 6, `unknown event type "batch.done"; valid values: batch.succeeded, batch.expired, batch.failed,`, "events", "publish", "--type", "batch.done", "--data", "{}")
	cli.fails(t, 5, "not found", "events", "get", "01nosuchevent")
}

type cliDelivery struct {
	ID           string `json:"id"`
	EventID      string `json:"event_id"`
	Status       string `json:"status"`
	AttemptCount int    `json:"attempt_count"`
	Attempts     []struct {
		StatusCode int `json:"status_code"`
	} `json:"attempts"`
}

func TestCLIDeliveries(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	cli := newCLI(t, s)
	rcv := newReceiver(t, nil)
	var hook cliWebhook
	cli.json(t, &hook, "webhooks", "create", "--uri", rcv.URL("/d"), "--events", "batch.succeeded")
	var ev cliEvent
	cli.json(t, &ev, "events", "publish", "--type", "batch.succeeded", "--data", `{"id":"batches/1"}`)
	rcv.waitN(t, 1, 20*time.Second)

	var page struct {
		Deliveries []cliDelivery `json:"deliveries"`
	}
	pollUntil(t, 20*time.Second, 50*time.Millisecond, "the delivery succeeded", func() (bool, string) {
		page.Deliveries = nil
		cli.json(t, &page, "deliveries", "list", hook.ID)
		return len(page.Deliveries) == 1 && page.Deliveries[0].Status == "succeeded", cli.run(t, "deliveries", "list", hook.ID)
	})
	d := page.Deliveries[0]
	mustContain(t, "deliveries list", cli.run(t, "deliveries", "list", hook.ID), "STATUS", d.ID, "batch.succeeded", "succeeded", "HTTP 200")
	// --until bounds the creation time from above: 30 minutes back from
	// now leaves nothing, a time to come keeps the delivery.
	if out := cli.run(t, "deliveries", "list", hook.ID, "--since", "1h", "--until", "30m"); out != "No deliveries.\n" {
		t.Fatalf("deliveries list --until 30m: %q", out)
	}
	mustContain(t, "deliveries list --until", cli.run(t, "deliveries", "list", hook.ID, "--until",
		time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), d.ID)
	cli.fails(t, 2, "--until must be after --since", "deliveries", "list", hook.ID, "--since", "30m", "--until", "1h")
	mustContain(t, "deliveries get", cli.run(t, "deliveries", "get", d.ID), "status:       succeeded", "event:        "+ev.ID, "LATENCY", "200")
	var one cliDelivery
	cli.json(t, &one, "deliveries", "get", d.ID)
	if one.EventID != ev.ID || len(one.Attempts) != 1 || one.Attempts[0].StatusCode != 200 {
		t.Fatalf("deliveries get --json: %+v", one)
	}

	mustContain(t, "redeliver", cli.run(t, "deliveries", "redeliver", d.ID), "Queued "+d.ID)
	rcv.waitN(t, 2, 20*time.Second)
	cli.json(t, &one, "deliveries", "redeliver", d.ID)
	if one.ID != d.ID || one.Status != "pending" {
		t.Fatalf("redeliver --json: %+v", one)
	}
	rcv.waitN(t, 3, 20*time.Second)

	// recover: events for a disabled webhook are skipped, then replayed.
	cli.run(t, "webhooks", "disable", hook.ID)
	cli.run(t, "events", "publish", "--type", "batch.succeeded", "--data", `{"id":"batches/2"}`)
	cli.run(t, "events", "publish", "--type", "batch.succeeded", "--data", `{"id":"batches/3"}`)
	cli.run(t, "webhooks", "enable", hook.ID)
	var dry struct {
		Count  int  `json:"count"`
		DryRun bool `json:"dry_run"`
	}
	cli.json(t, &dry, "deliveries", "recover", hook.ID, "--since", "1h", "--dry-run")
	if dry.Count != 2 || !dry.DryRun {
		t.Fatalf("recover --dry-run --json: %+v", dry)
	}
	out := cli.run(t, "deliveries", "recover", hook.ID, "--since", "1h")
	if out != "Re-queued 2 deliveries of "+hook.ID+".\n" {
		t.Fatalf("recover: %q", out)
	}
	rcv.waitN(t, 5, 20*time.Second)

	cli.fails(t, 2, "needs --since", "deliveries", "recover", hook.ID)
	cli.fails(t, 5, "not found", "deliveries", "get", "msg_nosuchdelivery")
	cli.fails(t, 6, "status", "deliveries", "list", hook.ID, "--status", "lost")
}

// TestCLITail: `deliveries tail` prints a delivery published after it
// started, then its attempt; --json prints one object per line.
func TestCLITail(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	cli := newCLI(t, s)
	rcv := newReceiver(t, nil)
	var hook cliWebhook
	cli.json(t, &hook, "webhooks", "create", "--uri", rcv.URL("/t"), "--events", "batch.failed")
	cli.run(t, "events", "publish", "--type", "batch.failed", "--data", `{"id":"batches/before"}`)
	rcv.waitN(t, 1, 20*time.Second)

	for _, mode := range []string{"human", "json"} {
		args := []string{"deliveries", "tail"}
		if mode == "json" {
			args = append(args, "--json")
		}
		cmd := exec.Command(longhookBin, args...)
		cmd.Env = cli.environ()
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr syncBuffer
		cmd.Stderr = &stderr
		setPdeathsig(cmd)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 100)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			_, _ = io.Copy(io.Discard, stdout)
		}()
		// The stream is open once tail says so on stderr (in both modes).
		pollUntil(t, 20*time.Second, 20*time.Millisecond, "tail ready", func() (bool, string) {
			return strings.Contains(stderr.String(), "Following deliveries"), stderr.String()
		})
		var ev cliEvent
		cli.json(t, &ev, "events", "publish", "--type", "batch.failed", "--data", `{"id":"batches/`+mode+`"}`)
		var created, attempted string
		timeout := time.After(30 * time.Second)
		for attempted == "" {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("tail ended: %s", stderr.String())
				}
				switch {
				case mode == "human" && strings.Contains(line, " created ") && strings.Contains(line, "batch.failed"):
					created = line
				case mode == "human" && strings.Contains(line, " attempt ") && created != "":
					attempted = line
				case mode == "json":
					var se struct {
						Kind     string      `json:"kind"`
						Delivery cliDelivery `json:"delivery"`
					}
					if err := json.Unmarshal([]byte(line), &se); err != nil {
						t.Fatalf("tail --json line %q: %v", line, err)
					}
					if se.Delivery.EventID != ev.ID {
						continue
					}
					if se.Kind == "created" {
						created = line
					} else if se.Kind == "attempt" && se.Delivery.Status == "succeeded" {
						attempted = line
					}
				}
			case <-timeout:
				t.Fatalf("%s tail: created %q, attempt %q; stderr %s", mode, created, attempted, stderr.String())
			}
		}
		if mode == "human" {
			mustContain(t, "tail attempt line", attempted, "succeeded", "#1 HTTP 200")
			if strings.Contains(created+attempted, "\x1b[") {
				t.Errorf("colours on a pipe: %q", created)
			}
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// TestCLITrigger: trigger publishes a sample of every catalog type; each
// arrives signed, and three independent verifiers accept it.
func TestCLITrigger(t *testing.T) {
	t.Parallel()
	requireNode(t)
	s := startServe(t)
	cli := newCLI(t, s)
	rcv := newReceiver(t, nil)
	catalog, err := core.NewCatalog()
	if err != nil {
		t.Fatal(err)
	}
	types := catalog.Types()
	var hook cliWebhook
	cli.json(t, &hook, "webhooks", "create", "--uri", rcv.URL("/all"), "--events", strings.Join(types, ","))
	for i, typ := range types {
		var ev cliEvent
		if i%2 == 0 {
			out := cli.run(t, "trigger", typ)
			mustContain(t, "trigger "+typ, out, "Triggered "+typ+": event ", ", 1 delivery.")
		} else {
			cli.json(t, &ev, "trigger", typ, "--data", `{"note":"override"}`)
			if ev.DeliveryCount != 1 || ev.Type != typ {
				t.Fatalf("trigger %s --json: %+v", typ, ev)
			}
		}
		r := rcv.waitN(t, i+1, 20*time.Second)
		e := r.envelope(t)
		var data map[string]any
		if err := json.Unmarshal(e.Data, &data); err != nil || e.Type != typ || len(data) < 2 {
			t.Fatalf("trigger %s delivered %s %s", typ, e.Type, e.Data)
		}
		if i%2 == 1 && data["note"] != "override" {
			t.Fatalf("trigger %s --data not merged: %s", typ, e.Data)
		}
		verifyHMAC(t, r, hook.NewSigningSecret).requireVerified(t, "trigger "+typ)
	}
	cli.fails(t, 2, "no sample", "trigger", "custom.thing")
}

// TestCLICompletion: each shell's script names the commands and verbs.
func TestCLICompletion(t *testing.T) {
	t.Parallel()
	cli := cliEnv{server: "http://127.0.0.1:1"}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		mustContain(t, sh, cli.run(t, "completion", sh), "webhooks", "deliveries", "redeliver", "batch.succeeded", "json")
	}
	cli.fails(t, 2, "unknown shell", "completion", "tcsh")

	// Bash completes each command's own flags and verbs: serve offers
	// --addr and not the client commands' --server (which it refuses),
	// recover its --since, and the local commands their verbs.
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash:", err)
	}
	script := cli.run(t, "completion", "bash")
	for line, want := range map[string]string{
		"longhook serve --ad":                "--addr",
		"longhook serve --se":                "",
		"longhook serve --addr x --data":     "--data-dir --database-url",
		"longhook deliveries recover --si":   "--since",
		"longhook deliveries recover --serv": "--server",
		"longhook webhooks rotate --rev":     "--revoke-now",
		"longhook migrate ":                  "up status",
		"longhook keys ":                     "create list revoke",
		"longhook gateway --con":             "--config",
		"longhook webhooks c":                "create",
		"longhook trigger batch.s":           "batch.succeeded",
	} {
		words := strings.Split(line, " ")
		var q []string
		for _, w := range words {
			q = append(q, fmt.Sprintf("%q", w))
		}
		prog := fmt.Sprintf("%s\nCOMP_WORDS=(%s); COMP_CWORD=%d; _longhook; echo \"${COMPREPLY[*]}\"\n", script, strings.Join(q, " "), len(words)-1)
		out, err := exec.Command("bash", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("bash completion of %q: %v\n%s", line, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("bash completes %q to %q, want %q", line, got, want)
		}
	}
}

// TestCLITailEndsWithTheStream: when the server ends the stream — here
// because tail's API key was revoked — `deliveries tail` says so and exits
// 1; it used to exit 0 without a word, as if a follow could finish.
func TestCLITailEndsWithTheStream(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	c := s.client(t)
	var projects struct {
		Projects []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"projects"`
	}
	c.call(t, "GET", "/v1beta/projects", nil, &projects)
	if len(projects.Projects) != 1 {
		t.Fatalf("projects: %+v", projects)
	}
	var key struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	c.call(t, "POST", "/v1beta/projects/"+projects.Projects[0].ID+"/keys", map[string]any{"name": "tail"}, &key)
	cli := cliEnv{server: s.URL(), key: key.Key}
	cmd := exec.Command(longhookBin, "deliveries", "tail")
	cmd.Env = cli.environ()
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	setPdeathsig(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	pollUntil(t, 20*time.Second, 20*time.Millisecond, "tail ready", func() (bool, string) {
		return strings.Contains(stderr.String(), "Following deliveries"), stderr.String()
	})
	c.call(t, "POST", "/v1beta/keys/"+key.ID+":revoke", nil, nil)
	select {
	case err := <-done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("tail ended with %v, want exit 1; stderr %q", err, stderr.String())
		}
		mustContain(t, "tail's stderr", stderr.String(), "the server closed the stream")
	case <-time.After(60 * time.Second):
		t.Fatalf("tail still running a minute after its key was revoked (streams recheck every 2 s); stderr %q", stderr.String())
	}
}

// TestCLIRotateSaysWhenOldSecretsExpire: `webhooks rotate` names the time
// the previous secrets stop being valid, as the server set it — under
// --time-scale 3600 seconds away, not the "24 h" it used to print.
func TestCLIRotateSaysWhenOldSecretsExpire(t *testing.T) {
	t.Parallel()
	s := startServe(t, withFlags("--time-scale", "3600"))
	cli := newCLI(t, s)
	var hook cliWebhook
	cli.json(t, &hook, "webhooks", "create", "--uri", "http://127.0.0.1:9/r", "--events", "batch.succeeded")
	before := time.Now().UTC().Truncate(time.Second)
	out := cli.run(t, "webhooks", "rotate", hook.ID)
	m := regexp.MustCompile(`valid until (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("rotate does not say until when the old secrets are valid:\n%s", out)
	}
	until, err := time.Parse("2006-01-02 15:04:05", m[1])
	if err != nil {
		t.Fatal(err)
	}
	// 24 h / 3600 = 24 s after the rotation (which came after before).
	if until.Before(before.Add(24*time.Second)) || until.After(time.Now().UTC().Add(25*time.Second)) {
		t.Fatalf("old secrets valid until %s; the rotation was at %s or later, at --time-scale 3600 (24 s)", until, before)
	}
}
