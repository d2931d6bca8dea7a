package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/longhook/longhook/client"
)

// runDeliveries is `longhook deliveries ...`: delivery history, replays and
// the live tail.
func runDeliveries(ctx context.Context, args []string, env Env) error {
	return runSubcommand(ctx, "deliveries", []subcommand{
		{"list", "list a webhook's deliveries, newest first: list WEBHOOK_ID [--status S] [--event-type T]", deliveriesList},
		{"get", "show a delivery with every attempt: get DELIVERY_ID", deliveriesGet},
		{"redeliver", "send a delivery again now: redeliver DELIVERY_ID", deliveriesRedeliver},
		{"recover", "re-queue a webhook's failed deliveries: recover WEBHOOK_ID --since 24h [--all] [--dry-run]", deliveriesRecover},
		{"tail", "follow new deliveries and attempts live [--webhook ID] [--event-type T]", deliveriesTail},
	}, args, env)
}

// since parses --since: a duration back from now ("24h") or an RFC 3339
// time.
func parseSince(flagName, s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: --%s must be a duration back from now (90m, 24h) or an RFC 3339 time, got %q", errUsage, flagName, s)
}

func deliveriesList(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("deliveries list", env)
	f := addAPIFlags(fs)
	status := fs.String("status", "", "pending, succeeded, failed, skipped or cancelled")
	eventType := fs.String("event-type", "", "only this event type")
	since := fs.String("since", "", "only deliveries created since (24h, or an RFC 3339 time)")
	until := fs.String("until", "", "only deliveries created before (30m back from now, or an RFC 3339 time)")
	size := fs.Int("page-size", 20, "deliveries to show (max 1000)")
	token := fs.String("page-token", "", "next_page_token of a previous list")
	pos, err := parseArgs(fs, args, 1, 1, "one webhook id")
	if err != nil {
		return err
	}
	if err := checkPageSize(*size); err != nil {
		return err
	}
	o := client.DeliveryListOptions{Status: *status, EventType: *eventType, ListOptions: client.ListOptions{PageSize: *size, PageToken: *token}}
	now := time.Now()
	if *since != "" {
		if o.Since, err = parseSince("since", *since, now); err != nil {
			return err
		}
	}
	if *until != "" {
		if o.Until, err = parseSince("until", *until, now); err != nil {
			return err
		}
	}
	if !o.Since.IsZero() && !o.Until.IsZero() && !o.Until.After(o.Since) {
		return fmt.Errorf("%w: --until must be after --since", errUsage)
	}
	return clientCommand(ctx, f, func(ctx context.Context, c *client.Client) error {
		page, err := c.ListDeliveries(ctx, pos[0], o)
		if err != nil {
			return err
		}
		return showPage(env.Stdout, f.json, page, &page.Deliveries, page.NextPageToken, listView[*client.Delivery]{
			none:   "No deliveries.",
			header: []string{"ID", "EVENT TYPE", "STATUS", "ATTEMPTS", "LAST", "CREATED"},
			row: func(d *client.Delivery) []string {
				return []string{d.ID, d.EventType, d.Status, strconv.Itoa(d.AttemptCount), lastResult(d),
					d.CreateTime.Local().Format(time.DateTime)}
			},
		})
	})
}

// lastResult is the last attempt's outcome in a few characters.
func lastResult(d *client.Delivery) string {
	switch {
	case d.LastStatusCode != 0:
		return "HTTP " + strconv.Itoa(d.LastStatusCode)
	case d.LastError != "":
		e, _, _ := strings.Cut(d.LastError, ":")
		return e
	}
	return "-"
}

var deliveriesGet = idCommand("deliveries get", "delivery", func(ctx context.Context, c *client.Client, env Env, id string, asJSON bool) error {
	d, err := c.GetDelivery(ctx, id)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(env.Stdout, d)
	}
	return showDelivery(env.Stdout, d)
})

func showDelivery(w io.Writer, d *client.Delivery) error {
	dest := d.WebhookID
	if dest == "" {
		dest = d.URI
	}
	rows := [][]string{{"id:", d.ID}, {"event:", d.EventID + " (" + d.EventType + ")"}, {"destination:", dest},
		{"status:", d.Status}, {"attempts:", strconv.Itoa(d.AttemptCount)},
		{"created:", d.CreateTime.Format(time.RFC3339Nano)}}
	if d.NextAttemptTime != nil {
		rows = append(rows, []string{"next attempt:", d.NextAttemptTime.Format(time.RFC3339Nano)})
	}
	if err := table(w, rows); err != nil {
		return err
	}
	if len(d.Attempts) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	rows = [][]string{{"#", "TIME", "STATUS", "LATENCY", "ERROR"}}
	for _, a := range d.Attempts {
		code := "-"
		if a.StatusCode != 0 {
			code = strconv.Itoa(a.StatusCode)
		}
		rows = append(rows, []string{strconv.Itoa(a.Number), a.Time.Local().Format("2006-01-02 15:04:05.000"), code,
			strconv.FormatInt(a.LatencyMS, 10) + "ms", orDash(a.Error)})
	}
	return table(w, rows)
}

var deliveriesRedeliver = idCommand("deliveries redeliver", "delivery", func(ctx context.Context, c *client.Client, env Env, id string, asJSON bool) error {
	d, err := c.Redeliver(ctx, id)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(env.Stdout, d)
	}
	fmt.Fprintf(env.Stdout, "Queued %s for one more attempt now (follow it: longhook deliveries get %s).\n", d.ID, d.ID)
	return nil
})

func deliveriesRecover(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("deliveries recover", env)
	f := addAPIFlags(fs)
	since := fs.String("since", "", "start of the range: a duration back from now (24h) or an RFC 3339 time (required)")
	until := fs.String("until", "", "end of the range (default: now)")
	all := fs.Bool("all", false, "every finished delivery, not only failed and skipped ones")
	dry := fs.Bool("dry-run", false, "count what would be re-queued, change nothing")
	pos, err := parseArgs(fs, args, 1, 1, "one webhook id")
	if err != nil {
		return err
	}
	if *since == "" {
		return fmt.Errorf("%w: deliveries recover needs --since (e.g. --since 24h)", errUsage)
	}
	now := time.Now()
	p := client.RecoverParams{All: *all, DryRun: *dry}
	if p.Since, err = parseSince("since", *since, now); err != nil {
		return err
	}
	if *until != "" {
		if p.Until, err = parseSince("until", *until, now); err != nil {
			return err
		}
	} else {
		p.Until = now // fixed, so the batches below walk one range
	}
	return clientCommand(ctx, f, func(ctx context.Context, c *client.Client) error {
		res, err := recoverAll(ctx, c, pos[0], p, newProgress(env.Stderr, "re-queued"))
		if err != nil {
			return err
		}
		if f.json {
			return printJSON(env.Stdout, res)
		}
		verb := "Re-queued"
		if res.DryRun {
			verb = "Would re-queue"
		}
		fmt.Fprintf(env.Stdout, "%s %d %s of %s.\n", verb, res.Count, plural(res.Count, "delivery"), pos[0])
		return nil
	})
}

// recoverBatch is the per-call limit of recoverAll.
const recoverBatch = 1000

// recoverAll calls :recover until nothing more matches, each call going on
// after the previous one (its page token: a delivery re-queued by one call
// that finished again is not taken again), reporting progress against a
// dry-run count.
func recoverAll(ctx context.Context, c *client.Client, webhookID string, p client.RecoverParams, prog *progress) (*client.RecoverResult, error) {
	if p.DryRun {
		p.Limit = 10000
		return c.Recover(ctx, webhookID, p)
	}
	count := p
	count.DryRun, count.Limit = true, 10000
	total, err := c.Recover(ctx, webhookID, count)
	if err != nil {
		return nil, err
	}
	prog.start(total.Count)
	defer prog.done()
	out := &client.RecoverResult{}
	p.Limit = recoverBatch
	for {
		res, err := c.Recover(ctx, webhookID, p)
		if err != nil {
			return nil, err
		}
		out.Count += res.Count
		prog.set(out.Count)
		if res.NextPageToken == "" {
			return out, nil
		}
		p.PageToken = res.NextPageToken
	}
}

func deliveriesTail(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("deliveries tail", env)
	f := addAPIFlags(fs)
	hook := fs.String("webhook", "", "only this webhook's deliveries")
	eventType := fs.String("event-type", "", "only this event type")
	if _, err := parseArgs(fs, args, 0, 0, "no arguments"); err != nil {
		return err
	}
	color := isTerminal(env.Stdout) && env.Getenv("NO_COLOR") == ""
	return clientCommand(ctx, f, func(ctx context.Context, c *client.Client) error {
		ready := func() {
			// On stderr in both modes: it tells a script that the stream is
			// open without mixing into the JSON lines.
			fmt.Fprintf(env.Stderr, "Following deliveries on %s (Ctrl-C to stop)…\n", c.BaseURL())
		}
		enc := json.NewEncoder(env.Stdout)
		err := c.StreamDeliveries(ctx, client.StreamOptions{WebhookID: *hook, EventType: *eventType, Ready: ready},
			func(ev client.StreamEvent) error {
				if f.json {
					return enc.Encode(ev)
				}
				_, err := fmt.Fprintln(env.Stdout, tailLine(ev, color))
				return err
			})
		if err == nil && ctx.Err() == nil {
			// Only Ctrl-C ends a follow quietly: a stream the server ended
			// (it stopped or restarted, or the key was revoked) is a
			// failure a script must see, not a finished command.
			return &exitError{code: exitFailure, err: errors.New("the server closed the stream (it stopped or restarted, or this API key was revoked or its webhook deleted); run the command again to follow on")}
		}
		return err
	})
}

// ANSI colours of tail lines.
const (
	ansiReset  = "\x1b[0m"
	ansiDim    = "\x1b[2m"
	ansiGreen  = "\x1b[32m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

// tailLine renders one stream event as one line.
func tailLine(ev client.StreamEvent, color bool) string {
	d := ev.Delivery
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + ansiReset
	}
	statusColor := map[string]string{client.DeliverySucceeded: ansiGreen, client.DeliveryFailed: ansiRed,
		client.DeliveryPending: ansiYellow}[d.Status]
	if statusColor == "" {
		statusColor = ansiDim
	}
	dest := d.WebhookID
	if dest == "" {
		dest = d.URI
	}
	detail := "→ " + dest
	if ev.Kind == client.StreamAttempt {
		detail = "#" + strconv.Itoa(d.AttemptCount) + " " + lastResult(d)
		if d.LastError != "" && d.LastStatusCode == 0 {
			detail = "#" + strconv.Itoa(d.AttemptCount) + " " + d.LastError
		}
	}
	if d.Status == client.DeliveryPending && d.NextAttemptTime != nil && ev.Kind == client.StreamAttempt {
		detail += ", retry at " + d.NextAttemptTime.Local().Format("15:04:05")
	}
	return fmt.Sprintf("%s  %-7s  %s  %-28s %s  %s",
		paint(ansiDim, d.UpdateTime.Local().Format("15:04:05.000")), paint(ansiCyan, ev.Kind), d.ID, d.EventType,
		paint(statusColor, fmt.Sprintf("%-9s", d.Status)), detail)
}
