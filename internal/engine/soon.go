package engine

import (
	"container/heap"
	"sync"
	"time"
)

// Retries due soon. The claim loop sleeps until the store's earliest due
// time — but while due work waits in the store for destinations the claim
// skips (at their cap, hanging), that minimum is in the past all along and
// says nothing about when anything else falls due: the loop waited for the
// safety poll (1 s; an hour under --time-scale 3600) before any other
// destination's retry. So the engine remembers when the retries it wrote
// fall due and sleeps no longer than the earliest of them that no claim
// has looked past yet. Retries written by another instance are that
// instance's to wake for.

const (
	// soonWindow: a retry due later than this after it was written is
	// left to the store's due time and the poll (a poll interval late at
	// worst is under 2 % of such a delay).
	soonWindow = time.Minute
	// soonMax bounds the times kept; beyond it, retries wait for the poll.
	soonMax = 4096
)

// soonTimes is a min-heap of retry due times.
type soonTimes struct {
	mu sync.Mutex
	h  timeHeap
}

// add records a retry due at t.
func (s *soonTimes) add(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.h) < soonMax {
		heap.Push(&s.h, t)
	}
}

// next forgets the times at or before seen — a claim that started at seen
// took those retries, or skipped their destinations — and returns the
// earliest time left.
func (s *soonTimes) next(seen time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.h) > 0 && !s.h[0].After(seen) {
		heap.Pop(&s.h)
	}
	if len(s.h) == 0 {
		return time.Time{}, false
	}
	return s.h[0], true
}

type timeHeap []time.Time

func (h timeHeap) Len() int           { return len(h) }
func (h timeHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h timeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timeHeap) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *timeHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
