package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/longhook/longhook/client"
)

// runEvents is `longhook events ...`: publish and read events.
func runEvents(ctx context.Context, args []string, env Env) error {
	return runSubcommand(ctx, "events", []subcommand{
		{"publish", "publish an event: --type T [--data JSON | stdin] [--idempotency-key K] [--webhook-uri URL]", eventsPublish},
		{"get", "show one event with its data: get ID", eventsGet},
		{"list", "list the project's events, newest first [--type T]", eventsList},
	}, args, env)
}

// publishFlags are the flags publish and trigger share.
type publishFlags struct {
	data, idem, subject string
	uris                []string
}

func addPublishFlags(fs *flagSet) *publishFlags {
	p := &publishFlags{}
	fs.StringVar(&p.data, "data", "", "event data, a JSON object (publish: default stdin)")
	fs.StringVar(&p.idem, "idempotency-key", "", "a repeat with the same key returns the first event and sends nothing")
	fs.StringVar(&p.subject, "subject", "", "resource name of the job (JWT sub of dynamic deliveries)")
	fs.Func("webhook-uri", "deliver to this URL only, JWT-signed (a dynamic webhook; repeatable)", func(s string) error {
		p.uris = append(p.uris, s)
		return nil
	})
	return p
}

func (p *publishFlags) params(typ string, data json.RawMessage) client.PublishParams {
	out := client.PublishParams{Type: typ, Data: data, IdempotencyKey: p.idem, Subject: p.subject}
	if len(p.uris) > 0 {
		out.WebhookConfig = &client.WebhookConfig{URIs: p.uris}
	}
	return out
}

// jsonObject checks that s is a JSON object and returns it compacted.
func jsonObject(what string, s []byte) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, bytes.TrimSpace(s)); err != nil || !bytes.HasPrefix(buf.Bytes(), []byte("{")) {
		return nil, fmt.Errorf("%w: %s must be a JSON object such as {\"id\":\"batches/123\"}", errUsage, what)
	}
	return buf.Bytes(), nil
}

func eventsPublish(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("events publish", env)
	f := addAPIFlags(fs)
	typ := fs.String("type", "", "event type, e.g. batch.succeeded (required)")
	pf := addPublishFlags(fs)
	if _, err := parseArgs(fs, args, 0, 0, "no arguments (data comes from --data or stdin)"); err != nil {
		return err
	}
	if *typ == "" {
		return fmt.Errorf("%w: events publish needs --type", errUsage)
	}
	raw, what := []byte(pf.data), "--data"
	if pf.data == "" {
		if env.Stdin == nil || isTerminal(env.Stdin) {
			raw = []byte("{}")
		} else {
			var err error
			if raw, err = io.ReadAll(io.LimitReader(env.Stdin, 16<<20)); err != nil {
				return fmt.Errorf("read stdin: %w", err)
			}
			what = "stdin"
			if len(bytes.TrimSpace(raw)) == 0 {
				raw = []byte("{}")
			}
		}
	}
	data, err := jsonObject(what, raw)
	if err != nil {
		return err
	}
	return clientCommand(ctx, f, func(ctx context.Context, c *client.Client) error {
		ev, err := c.Publish(ctx, pf.params(*typ, data))
		if err != nil {
			return err
		}
		return showPublished(env.Stdout, f.json, pf.idem, ev)
	})
}

// showPublished prints a publish's outcome; key is its idempotency key.
// A repeat of the key published nothing: saying "Published … to N
// destinations" would be false, so it says so (--json: "replayed": true).
func showPublished(w io.Writer, asJSON bool, key string, ev *client.Event) error {
	if asJSON {
		return printJSON(w, ev)
	}
	if ev.Replayed {
		showReplayed(w, key, ev)
		return nil
	}
	fmt.Fprintf(w, "Published %s %s to %d %s.\n", ev.Type, ev.ID, ev.DeliveryCount, plural(ev.DeliveryCount, "destination"))
	return nil
}

// showReplayed describes a publish whose idempotency key was used before.
func showReplayed(w io.Writer, key string, ev *client.Event) {
	fmt.Fprintf(w, "Already published (idempotency key %s): event %s — nothing new was sent.\n", key, ev.ID)
}

func plural(n int, word string) string {
	switch {
	case n == 1:
		return word
	case strings.HasSuffix(word, "y"):
		return strings.TrimSuffix(word, "y") + "ies"
	}
	return word + "s"
}

var eventsGet = idCommand("events get", "event", func(ctx context.Context, c *client.Client, env Env, id string, asJSON bool) error {
	ev, err := c.GetEvent(ctx, id)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(env.Stdout, ev)
	}
	rows := [][]string{{"id:", ev.ID}, {"type:", ev.Type}, {"timestamp:", ev.Timestamp.Format(time.RFC3339)},
		{"created:", ev.CreateTime.Format(time.RFC3339)}, {"deliveries:", strconv.Itoa(ev.DeliveryCount)}}
	if ev.Subject != "" {
		rows = append(rows, []string{"subject:", ev.Subject})
	}
	if ev.IdempotencyKey != "" {
		rows = append(rows, []string{"idempotency key:", ev.IdempotencyKey})
	}
	switch {
	case ev.WebhookConfig != nil && len(ev.WebhookConfig.URIs) > 0:
		rows = append(rows, []string{"webhook uris:", strings.Join(ev.WebhookConfig.URIs, ", ")})
	case ev.WebhookConfig != nil: // user_metadata alone: the registered webhooks took it
		rows = append(rows, []string{"webhook config:", "user_metadata only (sent to the registered webhooks)"})
	}
	if err := table(env.Stdout, rows); err != nil {
		return err
	}
	var pretty bytes.Buffer
	if len(ev.Data) > 0 && json.Indent(&pretty, ev.Data, "", "  ") == nil {
		fmt.Fprintf(env.Stdout, "data:\n%s\n", pretty.String())
	}
	return nil
})

func eventsList(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("events list", env)
	f := addAPIFlags(fs)
	typ := fs.String("type", "", "only events of this type")
	size := fs.Int("page-size", 20, "events to show (max 1000)")
	token := fs.String("page-token", "", "next_page_token of a previous list")
	if _, err := parseArgs(fs, args, 0, 0, "no arguments"); err != nil {
		return err
	}
	if err := checkPageSize(*size); err != nil {
		return err
	}
	return clientCommand(ctx, f, func(ctx context.Context, c *client.Client) error {
		page, err := c.ListEvents(ctx, client.EventListOptions{Type: *typ, ListOptions: client.ListOptions{PageSize: *size, PageToken: *token}})
		if err != nil {
			return err
		}
		return showPage(env.Stdout, f.json, page, &page.Events, page.NextPageToken, listView[*client.Event]{
			none:   "No events.",
			header: []string{"ID", "TYPE", "CREATED", "DELIVERIES", "IDEMPOTENCY KEY"},
			row: func(ev *client.Event) []string {
				return []string{ev.ID, ev.Type, ev.CreateTime.Local().Format(time.DateTime),
					strconv.Itoa(ev.DeliveryCount), orDash(ev.IdempotencyKey)}
			},
		})
	})
}
