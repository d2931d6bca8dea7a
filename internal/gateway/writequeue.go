package gateway

import (
	"cmp"
	"slices"
	"sync/atomic"

	"github.com/longhook/longhook/internal/groupcommit"
)

// Both inboxes write through one group-commit writer (internal/groupcommit)
// with these caps: operations and bytes per transaction, and four groups'
// worth queued.
const (
	maxGroup      = 512
	maxGroupBytes = 8 << 20
)

// A groupOp is a queued write the writer commits in a group.
type groupOp interface {
	// createdEvent is the event the operation stored, if it is an accept
	// that inserted one.
	createdEvent() (Event, bool)
	// size is about what the operation holds in memory.
	size() int
}

// newInboxWriter completes cfg with what both inboxes share: the caps,
// sizes, and ErrClosed after Close.
func newInboxWriter[T groupOp](cfg groupcommit.Config[T]) *groupcommit.Writer[T] {
	cfg.MaxItems, cfg.MaxBytes = maxGroup, maxGroupBytes
	cfg.QueueItems, cfg.QueueBytes = 4*maxGroup, 4*maxGroupBytes
	cfg.Size = T.size
	cfg.ErrClosed = ErrClosed
	return groupcommit.New(cfg)
}

// acceptSize is what an accept weighs in the writer's byte caps.
func acceptSize(p *AcceptParams) int {
	n := 256 + len(p.Body) + len(p.WebhookID) + len(p.Source)
	for k, vs := range p.Header {
		n += len(k)
		for _, v := range vs {
			n += len(v)
		}
	}
	return n
}

// createdEvents returns the events the group's accepts stored, by Seq.
func createdEvents[T groupOp](group []T, errs []error) []Event {
	var created []Event
	for i, op := range group {
		if e, ok := op.createdEvent(); ok && errs[i] == nil {
			created = append(created, e)
		}
	}
	slices.SortFunc(created, func(a, b Event) int { return cmp.Compare(a.Seq, b.Seq) })
	return created
}

// changeSignal is the Inbox's Changed: a channel closed, and replaced, at
// every signal.
type changeSignal struct{ ch atomic.Pointer[chan struct{}] }

func newChangeSignal() *changeSignal {
	c := &changeSignal{}
	ch := make(chan struct{})
	c.ch.Store(&ch)
	return c
}

func (c *changeSignal) wait() <-chan struct{} { return *c.ch.Load() }

func (c *changeSignal) signal() {
	next := make(chan struct{})
	close(*c.ch.Swap(&next))
}
