package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/longhook/longhook/client"
)

// Create a webhook, publish an event to it and look at the delivery.
func Example() {
	ctx := context.Background()
	c, err := client.New("http://127.0.0.1:8080", os.Getenv("LONGHOOK_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	hook, err := c.CreateWebhook(ctx, client.WebhookParams{
		Name:             "nightly",
		URI:              "https://example.com/hooks/nightly",
		SubscribedEvents: []string{"batch.succeeded", "batch.failed"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("signing secret (shown once):", hook.NewSigningSecret)

	ev, err := c.Publish(ctx, client.PublishParams{
		Type:           "batch.succeeded",
		Data:           json.RawMessage(`{"id":"batches/123","output_file_uri":"files/out-123"}`),
		IdempotencyKey: "batch-123-done",
	})
	if err != nil {
		log.Fatal(err)
	}
	page, err := c.ListDeliveries(ctx, hook.ID, client.DeliveryListOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range page.Deliveries {
		fmt.Println(d.ID, d.EventID == ev.ID, d.Status)
	}
}

// Errors carry the server's message; errors.Is matches them by status.
func ExampleError() {
	c, _ := client.New("", os.Getenv("LONGHOOK_API_KEY"))
	_, err := c.GetWebhook(context.Background(), "no-such-webhook")
	var apiErr *client.Error
	switch {
	case errors.Is(err, client.ErrNotFound):
		fmt.Println("no such webhook")
	case errors.As(err, &apiErr):
		fmt.Println("server said:", apiErr.Message)
	case err != nil:
		fmt.Println("cannot reach the server:", err)
	}
}

// Follow deliveries and attempts live until the context ends.
func ExampleClient_StreamDeliveries() {
	c, _ := client.New("", os.Getenv("LONGHOOK_API_KEY"))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	err := c.StreamDeliveries(ctx, client.StreamOptions{}, func(ev client.StreamEvent) error {
		d := ev.Delivery
		fmt.Println(ev.Kind, d.ID, d.EventType, d.Status, d.LastStatusCode)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}
