package gateway

import (
	"context"
	"sync"
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
