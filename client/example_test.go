package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/longhook/longhook/client"
)

// Create a webhook, publish an event to it and look at the delivery.
func Example() {
	// The default HTTP client has no timeout: bound every call.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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

// The client does not retry. Publish with an idempotency key is safe to
// repeat: a repeat that reaches the server after the first one returns the
// original event (Replayed) and sends nothing new.
func ExampleClient_Publish() {
	c, err := client.New("", os.Getenv("LONGHOOK_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	p := client.PublishParams{
		Type:           "batch.succeeded",
		Data:           json.RawMessage(`{"id":"batches/123"}`),
		IdempotencyKey: "batch-123-done", // the same on every try
	}
	var ev *client.Event
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ev, err = c.Publish(ctx, p)
		cancel()
		var apiErr *client.Error
		retryable := errors.Is(err, client.ErrUnavailable) || errors.Is(err, client.ErrResourceExhausted) ||
			(err != nil && !errors.As(err, &apiErr)) // no answer: network error or timeout
		if !retryable || try == 5 {
			break
		}
		time.Sleep(time.Duration(try) * time.Second)
	}
	if err != nil {
		log.Fatal(err) // e.g. ErrInvalidArgument: the message says which field
	}
	fmt.Println(ev.ID, ev.Replayed)
}
