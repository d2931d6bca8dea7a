package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/longhook/longhook/client"
)

// runWebhooks is `longhook webhooks ...`: the WebhookService over HTTP.
func runWebhooks(ctx context.Context, args []string, env Env) error {
	return runSubcommand(ctx, "webhooks", []subcommand{
		{"list", "list the project's webhooks", webhooksList},
		{"get", "show one webhook: get ID", webhooksGet},
		{"create", "create a webhook: --uri URL --events a,b [--name N]", webhooksCreate},
		{"update", "change a webhook: update ID [--name] [--uri] [--events]", webhooksUpdate},
		{"delete", "delete a webhook (cancels its pending deliveries): delete ID", webhooksDelete},
		{"ping", "send a webhook.ping event to a webhook: ping ID", webhooksPing},
		{"rotate", "make a new signing secret: rotate ID [--revoke-now]", webhooksRotate},
		{"enable", "enable a webhook (also after an automatic disable): enable ID", webhooksState(client.StateEnabled)},
		{"disable", "disable a webhook: disable ID", webhooksState(client.StateDisabled)},
	}, args, env)
}

func webhooksList(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("webhooks list", env)
	f := addAPIFlags(fs)
	size := fs.Int("page-size", 0, "webhooks per page (default 50, max 1000)")
	token := fs.String("page-token", "", "next_page_token of a previous list")
	all := fs.Bool("all", false, "follow next_page_token through every page")
	if _, err := parseArgs(fs, args, 0, 0, "no arguments"); err != nil {
		return err
	}
	if err := checkPageSize(*size); err != nil {
		return err
	}
	return clientCommand(ctx, f, func(ctx context.Context, c *client.Client) error {
		page := &client.WebhookPage{}
		opts := client.ListOptions{PageSize: *size, PageToken: *token}
		for {
			p, err := c.ListWebhooks(ctx, opts)
			if err != nil {
				return err
			}
			page.Webhooks = append(page.Webhooks, p.Webhooks...)
			page.NextPageToken = p.NextPageToken
			if !*all || p.NextPageToken == "" {
				break
			}
			opts.PageToken = p.NextPageToken
		}
		return showPage(env.Stdout, f.json, page, &page.Webhooks, page.NextPageToken, listView[*client.Webhook]{
			none:   "No webhooks. Create one with: longhook webhooks create --uri https://… --events batch.succeeded",
			header: []string{"ID", "NAME", "STATE", "EVENTS", "URI"},
			row: func(w *client.Webhook) []string {
				return []string{w.ID, orDash(w.Name), w.State, strings.Join(w.SubscribedEvents, ","), w.URI}
			},
			more: ", or --all for every page",
		})
	})
}

var webhooksGet = idCommand("webhooks get", "webhook", func(ctx context.Context, c *client.Client, env Env, id string, asJSON bool) error {
	w, err := c.GetWebhook(ctx, id)
	if err != nil {
		return err
	}
	return showWebhook(env.Stdout, asJSON, w)
})

// showWebhook prints a webhook (with its new secret, if any).
func showWebhook(w io.Writer, asJSON bool, h *client.Webhook) error {
	if asJSON {
		return printJSON(w, h)
	}
	rows := [][]string{
		{"id:", h.ID}, {"name:", orDash(h.Name)}, {"uri:", h.URI},
		{"events:", strings.Join(h.SubscribedEvents, ", ")}, {"state:", h.State},
		{"created:", h.CreateTime.Format(time.RFC3339)}, {"updated:", h.UpdateTime.Format(time.RFC3339)},
	}
	if r := h.RateLimit; r != nil {
		v := fmt.Sprintf("%g/s", r.PerSecond)
		if r.Burst > 0 {
			v += fmt.Sprintf(", burst %d", r.Burst)
		}
		rows = append(rows, []string{"rate limit:", v})
	}
	if len(h.RetrySchedule) > 0 {
		rows = append(rows, []string{"retry schedule:", strings.Join(h.RetrySchedule, ", ")})
	}
	if h.TracePropagation {
		rows = append(rows, []string{"traceparent:", "sent to the receiver"})
	}
	for i, s := range h.SigningSecrets {
		label := ""
		if i == 0 {
			label = "secrets:"
		}
		v := s.TruncatedSecret
		if s.ExpireTime != nil {
			v += " (expires " + s.ExpireTime.Format(time.RFC3339) + ")"
		}
		rows = append(rows, []string{label, v})
	}
	if err := table(w, rows); err != nil {
		return err
	}
	if h.NewSigningSecret != "" {
		fmt.Fprintf(w, "\nSigning secret (shown once, keep it to verify deliveries):\n\n    %s\n", h.NewSigningSecret)
	}
	return nil
}

func webhooksCreate(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("webhooks create", env)
	f := addAPIFlags(fs)
	name := fs.String("name", "", "display name")
	uri := fs.String("uri", "", "destination URL (https; http and private addresses need serve --dev)")
	events := fs.String("events", "", "comma-separated event types to subscribe to, e.g. batch.succeeded,batch.failed")
	ext := addExtFlags(fs.FlagSet.FlagSet, false)
	if _, err := parseArgs(fs, args, 0, 0, "no arguments (use --uri and --events)"); err != nil {
		return err
	}
	if *uri == "" || *events == "" {
		return fmt.Errorf("%w: webhooks create needs --uri and --events", errUsage)
	}
	p := client.WebhookParams{Name: *name, URI: *uri, SubscribedEvents: splitList(*events)}
	if _, err := ext.apply(fs.FlagSet.FlagSet, &p, false); err != nil {
		return err
	}
	return clientCommand(ctx, f, func(ctx context.Context, c *client.Client) error {
		w, err := c.CreateWebhook(ctx, p)
		if err != nil {
			return err
		}
		return showWebhook(env.Stdout, f.json, w)
	})
}

func webhooksUpdate(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("webhooks update", env)
	f := addAPIFlags(fs)
	name := fs.String("name", "", "new display name")
	uri := fs.String("uri", "", "new destination URL")
	events := fs.String("events", "", "new comma-separated event types")
	ext := addExtFlags(fs.FlagSet.FlagSet, true)
	pos, err := parseArgs(fs, args, 1, 1, "one webhook id")
	if err != nil {
		return err
	}
	var p client.WebhookParams
	var mask []string
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "name":
			p.Name, mask = *name, append(mask, "name")
		case "uri":
			p.URI, mask = *uri, append(mask, "uri")
		case "events":
			p.SubscribedEvents, mask = splitList(*events), append(mask, "subscribed_events")
		}
	})
	extMask, err := ext.apply(fs.FlagSet.FlagSet, &p, true)
	if err != nil {
		return err
	}
	if mask = append(mask, extMask...); len(mask) == 0 {
		return fmt.Errorf("%w: webhooks update needs at least one of --name, --uri, --events, --rate-limit, --trace-propagation, --retry-schedule", errUsage)
	}
	return clientCommand(ctx, f, func(ctx context.Context, c *client.Client) error {
		w, err := c.UpdateWebhook(ctx, pos[0], p, mask...)
		if err != nil {
			return err
		}
		return showWebhook(env.Stdout, f.json, w)
	})
}

func webhooksState(state string) func(ctx context.Context, args []string, env Env) error {
	verb := "enable"
	if state == client.StateDisabled {
		verb = "disable"
	}
	return idCommand("webhooks "+verb, "webhook", func(ctx context.Context, c *client.Client, env Env, id string, asJSON bool) error {
		w, err := c.UpdateWebhook(ctx, id, client.WebhookParams{State: state}, "state")
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(env.Stdout, w)
		}
		fmt.Fprintf(env.Stdout, "Webhook %s is %s.\n", w.ID, w.State)
		return nil
	})
}

var webhooksDelete = idCommand("webhooks delete", "webhook", func(ctx context.Context, c *client.Client, env Env, id string, asJSON bool) error {
	if err := c.DeleteWebhook(ctx, id); err != nil {
		return err
	}
	if asJSON {
		// A JSON boolean, as every other flag in the API's answers is:
		// a script testing .deleted == true must not meet the string "true".
		return printJSON(env.Stdout, map[string]any{"id": id, "deleted": true})
	}
	fmt.Fprintf(env.Stdout, "Deleted webhook %s (its pending deliveries are cancelled; history stays readable).\n", id)
	return nil
})

var webhooksPing = idCommand("webhooks ping", "webhook", func(ctx context.Context, c *client.Client, env Env, id string, asJSON bool) error {
	if err := c.PingWebhook(ctx, id); err != nil {
		return err
	}
	if asJSON {
		return printJSON(env.Stdout, map[string]string{"id": id, "queued": "webhook.ping"})
	}
	fmt.Fprintf(env.Stdout, "Queued a webhook.ping to %s (see: longhook deliveries list %s).\n", id, id)
	return nil
})

func webhooksRotate(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("webhooks rotate", env)
	f := addAPIFlags(fs)
	now := fs.Bool("revoke-now", false, "revoke the previous secrets at once (default: they stay valid for 24 h)")
	pos, err := parseArgs(fs, args, 1, 1, "one webhook id")
	if err != nil {
		return err
	}
	return clientCommand(ctx, f, func(ctx context.Context, c *client.Client) error {
		secret, err := c.RotateSigningSecret(ctx, pos[0], *now)
		if err != nil {
			return err
		}
		if f.json {
			return printJSON(env.Stdout, map[string]string{"secret": secret})
		}
		old := "The previous secrets stay valid for 24 h; deliveries carry one signature per secret."
		if *now {
			old = "The previous secrets are revoked."
		} else if w, err := c.GetWebhook(ctx, pos[0]); err == nil {
			// The server's own expiry: 24 h, or less under --time-scale.
			var until time.Time
			for _, s := range w.SigningSecrets {
				if s.ExpireTime != nil && s.ExpireTime.After(until) {
					until = *s.ExpireTime
				}
			}
			if !until.IsZero() {
				old = "The previous secrets stay valid until " + until.UTC().Format("2006-01-02 15:04:05") +
					" UTC; deliveries carry one signature per secret until then."
			}
		}
		fmt.Fprintf(env.Stdout, "New signing secret (shown once):\n\n    %s\n\n%s\n", secret, old)
		return nil
	})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
