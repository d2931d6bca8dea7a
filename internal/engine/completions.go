package engine

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/groupcommit"
)

// newCompletions returns the writer of attempt results (group commit, see
// internal/groupcommit): it takes whatever has queued up while the
// previous write ran, so a busy engine writes hundreds per transaction. A
// batch smaller than lingerBatch waits up to completionLinger for more: at
// a few thousand results a second that turns a commit per result or two
// into one per dozen, and nothing waits on it (the attempt's slot is
// already free; the lease outlives the wait). The queue holds up to
// maxCompletionQueue results or bytes; an attempt waits for room before
// it frees its slot.
func (e *Engine) newCompletions() *groupcommit.Writer[core.Completion] {
	return groupcommit.New(groupcommit.Config[core.Completion]{
		Commit: e.write,
		// A batch that cannot be written is retried whole (write); split
		// it then, so one result the store refuses cannot take thousands
		// with it.
		Split:    func(err error) bool { return !errors.Is(err, context.Canceled) },
		Begin:    func(g []core.Completion) { e.groupLen = len(g) },
		Done:     e.settled,
		Size:     completionSize,
		MaxItems: 4096, MaxBytes: 8 << 20,
		QueueItems: max(e.cfg.Workers*4, 8192), QueueBytes: 64 << 20,
		Linger: func(queued, _ int) (int, time.Duration) {
			return lingerBatch, completionLinger
		},
	})
}

// completionSize is about what a result holds in memory.
func completionSize(c core.Completion) int {
	return 256 + len(c.Attempt.Response) + len(c.Attempt.Error)
}

// A completion batch smaller than lingerBatch waits up to completionLinger
// for more results before it is written.
const (
	lingerBatch      = 64
	completionLinger = 2 * time.Millisecond
)

// write writes a batch of results, retrying a failing store for a while.
// A result that cannot be written is not lost: the delivery's lease
// expires and it is attempted again (at-least-once); trying first saves
// that duplicate. A split half (see newCompletions) is tried once.
func (e *Engine) write(batch []core.Completion) error {
	ctx := context.Background()
	backoff := 20 * time.Millisecond
	tries := 9
	if len(batch) < e.groupLen {
		tries = 1
	}
	for attempt := 1; ; attempt++ {
		err := e.cfg.Store.CompleteDeliveries(ctx, batch)
		if err == nil {
			return nil
		}
		e.cfg.Logger.Error("engine.complete_failed", slog.Int("batch", len(batch)), slog.String("error", err.Error()))
		if attempt >= tries || errors.Is(err, context.Canceled) {
			return err
		}
		time.Sleep(backoff)
		backoff = min(backoff*2, 2*time.Second)
	}
}

// settled runs after a batch of results was written.
func (e *Engine) settled(batch []core.Completion, errs []error) {
	e.noteDisabled(batch, errs)
	e.noteRetries(batch, errs)
	e.written.Add(uint64(len(batch))) // after the wake-ups it sent
}

// noteDisabled bumps the webhook generation when a written result disabled
// its webhook (410 Gone): the publisher's subscription lists and the
// deliveries this engine holds were read before, with the webhook still
// enabled, and must not outlive the change that webhooks.get already shows
// (the next event is recorded as skipped, not sent).
func (e *Engine) noteDisabled(batch []core.Completion, errs []error) {
	for i, c := range batch {
		if errs[i] == nil && c.DisableWebhook {
			e.WebhooksChanged()
			return
		}
	}
}

// noteRetries records when the written retries due within soonWindow fall
// due (soon.go), and wakes the claim loop when one is due before its
// safety poll (short delays, --time-scale).
func (e *Engine) noteRetries(batch []core.Completion, errs []error) {
	now := e.cfg.Clock.Now()
	poll, window := now.Add(e.cfg.PollInterval), now.Add(soonWindow)
	wake := false
	for i, c := range batch {
		if errs[i] != nil || c.Status != core.DeliveryPending {
			continue
		}
		if c.NextAttemptTime.Before(window) {
			e.soon.add(c.NextAttemptTime)
		}
		wake = wake || c.NextAttemptTime.Before(poll)
	}
	if wake {
		select {
		case e.resched <- struct{}{}:
		default:
		}
	}
}
