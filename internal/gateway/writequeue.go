package gateway

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
)

// opResult is what a caller waits for: the outcome of its queued write,
// set by the writer before it closes done.
type opResult struct {
	err  error
	done chan struct{}
}

func (r *opResult) result() *opResult { return r }

// writeQueue is the submitting side of an inbox's single writer: callers
// queue operations and wait until the group transaction holding theirs has
// committed; close stops new submissions and lets the writer drain what is
// queued (it sees the channel closed once that is done).
type writeQueue[T interface{ result() *opResult }] struct {
	ops chan T

	mu     sync.RWMutex // guards closed against enqueues
	closed bool
}

func newWriteQueue[T interface{ result() *opResult }](size int) *writeQueue[T] {
	return &writeQueue[T]{ops: make(chan T, size)}
}

// submit queues op and waits for its transaction to commit.
func (q *writeQueue[T]) submit(ctx context.Context, op T) error {
	r := op.result()
	r.done = make(chan struct{})
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return ErrClosed
	}
	select {
	case q.ops <- op:
		q.mu.RUnlock()
	case <-ctx.Done():
		q.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain appends queued operations to group, up to limit, without blocking.
func (q *writeQueue[T]) drain(group []T, limit int) []T {
	for len(group) < limit {
		select {
		case op, ok := <-q.ops:
			if !ok {
				return group
			}
			group = append(group, op)
		default:
			return group
		}
	}
	return group
}

// close refuses new submissions and closes the channel the writer reads.
func (q *writeQueue[T]) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	close(q.ops)
}

func (q *writeQueue[T]) isClosed() bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.closed
}

// A groupOp is a queued write the writer commits in a group.
type groupOp interface {
	result() *opResult
	// createdEvent is the event the operation stored, if it is an accept
	// that inserted one.
	createdEvent() (Event, bool)
}

// settle runs group in one transaction with run and sets each operation's
// error. A group that failed for a reason split accepts runs again one
// operation at a time, so one bad operation cannot fail its neighbours.
func settle[T groupOp](group []T, run func([]T) error, split func(error) bool) {
	err := run(group)
	if err != nil && len(group) > 1 && split(err) {
		for _, op := range group {
			op.result().err = run([]T{op})
		}
		return
	}
	for _, op := range group {
		op.result().err = err
	}
}

// createdEvents returns the events the group's accepts stored, by Seq.
func createdEvents[T groupOp](group []T) []Event {
	var created []Event
	for _, op := range group {
		if e, ok := op.createdEvent(); ok && op.result().err == nil {
			created = append(created, e)
		}
	}
	slices.SortFunc(created, func(a, b Event) int { return cmp.Compare(a.Seq, b.Seq) })
	return created
}

// release lets the group's callers return.
func release[T groupOp](group []T) {
	for _, op := range group {
		close(op.result().done)
	}
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
