package sdktest

import (
	"context"
	"testing"

	gi "google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"
	wh "google.golang.org/genai/interactions/models/webhooks"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/webhook"
)

// TestGoSDKMetadataOnlyWebhookConfig: the Go SDK's WebhookConfig has uris
// optional (omitzero), so a background interaction that only tags its
// events sends {"user_metadata": …} alone. longhook refused that with 400;
// now the events go to the project's registered webhook, HMAC-signed,
// carrying data.user_metadata. The webhook is created without a name, which
// the SDK reads as Name == nil (it was a pointer to "").
func TestGoSDKMetadataOnlyWebhookConfig(t *testing.T) {
	t.Parallel()
	f := startServe(t)
	hook := newReceiver(t)
	ctx := context.Background()
	c := goSDK(t, f)
	cr, err := c.Webhooks.Create(ctx, operations.CreateWebhookRequest{APIVersion: &apiVersion, Body: wh.WebhookInput{URI: hook.srv.URL,
		SubscribedEvents: []wh.WebhookSubscribedEvent{wh.WebhookSubscribedEventInteractionCompleted}}})
	if err != nil {
		t.Fatal(err)
	}
	if cr.Webhook.Name != nil {
		t.Errorf("a webhook created without a name has Name %q", *cr.Webhook.Name)
	}
	v, err := webhook.NewVerifier([]string{*cr.Webhook.NewSigningSecret})
	if err != nil {
		t.Fatal(err)
	}
	ir, err := c.Interactions.Create(ctx, operations.CreateInteractionRequest{APIVersion: &apiVersion,
		Body: operations.NewCreateInteractionRequestBody(gi.CreateModelInteraction{Model: gi.Model("gemini-2.5-flash"),
			Input: new(gi.NewInteractionsInput("hello")), Background: new(true),
			WebhookConfig: &gi.WebhookConfig{UserMetadata: map[string]any{"run": "go-sdk"}}})})
	if err != nil {
		t.Fatal(err)
	}
	id := *ir.Interaction.ID
	it := pollInteraction(t, c, id, gi.InteractionStatusCompleted)
	if it.WebhookConfig == nil || it.WebhookConfig.Uris != nil || it.WebhookConfig.UserMetadata["run"] != "go-sdk" {
		t.Errorf("webhook_config echoed as %+v", it.WebhookConfig)
	}
	d := hook.next(t)
	if err := v.Verify(d.header, d.body); err != nil {
		t.Fatalf("HMAC: %v", err)
	}
	m, _ := d.data()["user_metadata"].(map[string]any)
	if d.event["type"] != core.EventInteractionCompleted || d.data()["id"] != id || m["run"] != "go-sdk" {
		t.Fatalf("delivery: %s", d.body)
	}
}
