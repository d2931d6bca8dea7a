package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/longhook/longhook/client"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/envflag"
)

// sampleData returns realistic data for an event type, shaped like what
// longhook's jobs emit (docs/api.md, "Jobs"); ids are fresh for each call so
// receivers that deduplicate see a new job. ok is false for a type without
// a sample (an operator's custom type).
func sampleData(typ string, now time.Time) (map[string]any, bool) {
	n := fmt.Sprintf("%d", now.UnixNano()%1_000_000_000)
	batch := "batches/trigger-" + n
	op := "models/veo-3.0-generate-001/operations/trigger-" + n
	interaction := "trigger-" + n
	msg := "Request 2: contents is empty (sample event from longhook trigger)"
	// A failure as jobs report it: the status name and message, and the
	// resource's error — the google.rpc code number for batches and
	// videos, the status name for interactions (docs/api.md, "Job events").
	failure := func(code any) map[string]any {
		return map[string]any{"error_code": "INVALID_ARGUMENT", "error_message": msg,
			"error": map[string]any{"code": code, "message": msg}}
	}
	hook, hookURI := "trigger-"+n, "https://example.com/webhooks/longhook"
	video := "video-" + n
	samples := map[string]map[string]any{
		"batch.succeeded": {"id": batch, "output_file_uri": "files/batch-output-" + n, "sequence": 3},
		"batch.failed":    merge(map[string]any{"id": batch, "sequence": 3}, failure(3)),
		"batch.expired":   {"id": batch, "sequence": 2},
		"batch.cancelled": {"id": batch, "sequence": 2},
		"video.generated": {"id": op, "output_file_uri": "files/" + video + ":download?alt=media",
			"video_uri": "files/" + video + ":download?alt=media", "file_name": "files/" + video, "file_id": video, "sequence": 2},
		"video.failed": merge(map[string]any{"id": op, "sequence": 2}, failure(3)),
		"interaction.requires_action": {"id": interaction, "sequence": 2, "required_action": map[string]any{
			"type": "function_calls", "function_calls": []any{map[string]any{
				"id": "call-" + n, "name": "get_weather", "arguments": map[string]any{"location": "Paris"}}}}},
		"interaction.completed": {"id": interaction, "sequence": 3, "output": map[string]any{
			"content": []any{map[string]any{"type": "text", "text": "It is 18 °C and sunny in Paris (sample event from longhook trigger)."}}}},
		"interaction.failed":    merge(map[string]any{"id": interaction, "sequence": 3}, failure("INVALID_ARGUMENT")),
		"interaction.cancelled": {"id": interaction, "sequence": 2},
		"webhook.disabled": {"webhook_id": hook, "name": "sample receiver", "uri": hookURI,
			"state": string(core.WebhookDisabledDueToFailedDeliveries), "reason": "consecutive_failures",
			"failure_count": 25, "failing_since": now.Add(-5 * 24 * time.Hour).UTC().Format(time.RFC3339Nano)},
		"webhook.enabled": {"webhook_id": hook, "name": "sample receiver", "uri": hookURI,
			"previous_state": string(core.WebhookDisabledDueToFailedDeliveries)},
		"delivery.exhausted": {"delivery_id": "msg_trigger" + n, "event_id": "trigger-" + n, "webhook_id": hook,
			"event_type": "batch.succeeded", "attempt_count": 18, "last_status_code": 503, "last_error": "unavailable: HTTP 503",
			"reason": "retries_exhausted"},
	}
	d, ok := samples[typ]
	return d, ok
}

func merge(a, b map[string]any) map[string]any {
	maps.Copy(a, b)
	return a
}

// sampleTypes lists the types trigger has samples for.
func sampleTypes() []string {
	return []string{"batch.succeeded", "batch.failed", "batch.expired", "batch.cancelled", "video.generated",
		"video.failed", "interaction.requires_action", "interaction.completed", "interaction.failed",
		"interaction.cancelled", "webhook.disabled", "webhook.enabled", "delivery.exhausted"}
}

// runTrigger is `longhook trigger TYPE`: publish a realistic sample event.
func runTrigger(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("trigger", env)
	f := addAPIFlags(fs)
	pf := addPublishFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: longhook trigger TYPE [flags]\n\nPublishes a realistic sample event of TYPE (one of %s).\n--data fields override the sample's.\n\nFlags:\n",
			strings.Join(sampleTypes(), ", "))
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args, 1, 1, "one event type, e.g. longhook trigger batch.succeeded")
	if err != nil {
		return err
	}
	typ := pos[0]
	data, ok := sampleData(typ, time.Now())
	if !ok {
		data = map[string]any{}
		if pf.data == "" {
			if hint := envflag.DidYouMean(typ, sampleTypes()); hint != "" {
				return fmt.Errorf("%w: no sample for %q%s", errUsage, typ, hint)
			}
			return fmt.Errorf("%w: no sample for %q (samples: %s); pass its data with --data", errUsage, typ, strings.Join(sampleTypes(), ", "))
		}
	}
	if pf.data != "" {
		var over map[string]any
		if err := json.Unmarshal([]byte(pf.data), &over); err != nil || over == nil {
			return fmt.Errorf("%w: --data must be a JSON object such as {\"id\":\"batches/123\"}", errUsage)
		}
		maps.Copy(data, over)
	}
	raw, _ := json.Marshal(data)
	if pf.subject == "" {
		if id, _ := data["id"].(string); id != "" {
			pf.subject = id
		}
	}
	return clientCommand(ctx, f, func(ctx context.Context, c *client.Client) error {
		ev, err := c.Publish(ctx, pf.params(typ, raw))
		if err != nil {
			return err
		}
		if f.json {
			return printJSON(env.Stdout, ev)
		}
		if ev.Replayed {
			showReplayed(env.Stdout, pf.idem, ev)
			return nil
		}
		fmt.Fprintf(env.Stdout, "Triggered %s: event %s, %d %s.\n", typ, ev.ID, ev.DeliveryCount, plural(ev.DeliveryCount, "delivery"))
		if ev.DeliveryCount == 0 {
			fmt.Fprintf(env.Stdout, "No webhook of this project subscribes to %s (longhook webhooks list).\n", typ)
		}
		return nil
	})
}
