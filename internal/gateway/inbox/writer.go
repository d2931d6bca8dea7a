package inbox

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
	MaxGroup      = 512
	MaxGroupBytes = 8 << 20
)

// A GroupOp is a queued write the writer commits in a group.
type GroupOp interface {
	// CreatedEvent is the event the operation stored, if it is an accept
	// that inserted one.
	CreatedEvent() (Event, bool)
	// Size is about what the operation holds in memory.
	Size() int
}

// NewWriter completes cfg with what both inboxes share: the caps,
// sizes, and ErrClosed after Close.
func NewWriter[T GroupOp](cfg groupcommit.Config[T]) *groupcommit.Writer[T] {
	cfg.MaxItems, cfg.MaxBytes = MaxGroup, MaxGroupBytes
	cfg.QueueItems, cfg.QueueBytes = 4*MaxGroup, 4*MaxGroupBytes
	cfg.Size = T.Size
	cfg.ErrClosed = ErrClosed
	return groupcommit.New(cfg)
}

// AcceptSize is what an accept weighs in the writer's byte caps.
func AcceptSize(p *AcceptParams) int {
	n := 256 + len(p.Body) + len(p.WebhookID) + len(p.Source)
	for k, vs := range p.Header {
		n += len(k)
		for _, v := range vs {
			n += len(v)
		}
	}
	return n
}

// CreatedEvents returns the events the group's accepts stored, by Seq.
func CreatedEvents[T GroupOp](group []T, errs []error) []Event {
	var created []Event
	for i, op := range group {
		if e, ok := op.CreatedEvent(); ok && errs[i] == nil {
			created = append(created, e)
		}
	}
	slices.SortFunc(created, func(a, b Event) int { return cmp.Compare(a.Seq, b.Seq) })
	return created
}

// ChangeSignal is the Inbox's Changed: a channel closed, and replaced, at
// every signal.
type ChangeSignal struct{ ch atomic.Pointer[chan struct{}] }

// NewChangeSignal returns a ChangeSignal.
func NewChangeSignal() *ChangeSignal {
	c := &ChangeSignal{}
	ch := make(chan struct{})
	c.ch.Store(&ch)
	return c
}

func (c *ChangeSignal) Wait() <-chan struct{} { return *c.ch.Load() }

func (c *ChangeSignal) Signal() {
	next := make(chan struct{})
	close(*c.ch.Swap(&next))
}
