package gateway

import "github.com/longhook/longhook/internal/gateway/inbox"

// The gateway's durable store is an inbox.Inbox; its drivers live in
// inbox/sqlite and inbox/postgres. These aliases keep the gateway's code
// speaking of its own Inbox.
type (
	// Inbox is the gateway's durable store (see inbox.Inbox).
	Inbox = inbox.Inbox
	// AcceptParams is one received, verified event.
	AcceptParams = inbox.AcceptParams
	// AcceptResult says what Accept did.
	AcceptResult = inbox.AcceptResult
	// Event is a stored event.
	Event = inbox.Event
	// Forward is an event waiting for a retry to one sink.
	Forward = inbox.Forward
	// RetryParams records a failed forward attempt or a retry's outcome.
	RetryParams = inbox.RetryParams
	// SweepParams bounds a sweep of expired events.
	SweepParams = inbox.SweepParams
)

// ErrClosed is returned by an Inbox after Close.
var ErrClosed = inbox.ErrClosed
