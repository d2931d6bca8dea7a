// Package groupcommit gathers writes from many goroutines into shared
// transactions (group commit). Publish, the engine's completions and both
// gateway inboxes use it: one commit of many items costs far less than
// many commits of one.
//
// A Writer has a bounded queue (items and bytes) and a dedicated goroutine
// that takes whatever has queued up while the previous group committed,
// up to a cap on items and bytes per group, and commits it. Callers wait
// only for the group holding their item: with the queue bounded to a few
// groups, no caller waits for more than the group committing when it
// arrived plus its own (unless the queue was already full, where it
// waits its turn for room). Waits honour the caller's context. A group
// that fails is split in halves, recursively, so that one bad item fails
// alone.
package groupcommit

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"
)

// ErrClosed is returned by Submit after Close (unless Config.ErrClosed
// says otherwise).
var ErrClosed = errors.New("groupcommit: writer closed")

// Config configures a Writer. Only Commit is required.
type Config[T any] struct {
	// Commit writes group in one transaction and returns nil or the
	// group's error. It runs on the writer goroutine only, so it may use
	// state no other goroutine touches (a connection, prepared
	// statements).
	Commit func(group []T) error
	// Split reports whether a group that failed with err is split in
	// halves and each half committed again, to isolate the items that
	// cause it. nil splits every failure; a driver returns false for
	// failures of the whole database, which a split would only repeat.
	Split func(err error) bool
	// Begin, if set, is called on the writer goroutine with a group
	// before its first Commit (statistics, state shared by its splits).
	Begin func(group []T)
	// Done, if set, is called on the writer goroutine once every item of
	// the group has its outcome (errs[i] is group[i]'s, nil if it
	// committed), before the callers are released.
	Done func(group []T, errs []error)
	// Size is an item's size in bytes for the byte caps (nil: 1).
	Size func(T) int
	// MaxItems and MaxBytes cap a group (defaults 256 and 4 MiB). An
	// item larger than MaxBytes is committed alone.
	MaxItems, MaxBytes int
	// QueueItems and QueueBytes bound the items waiting for a group
	// (defaults 4 × MaxItems and 4 × MaxBytes). Submit waits for room;
	// an item larger than QueueBytes is queued once the queue is empty.
	QueueItems, QueueBytes int
	// Yields is how often the writer lets other goroutines run before it
	// takes a group, so writes about to arrive join it (stopping early
	// when a yield brought nothing): microseconds, and on an idle writer
	// they return at once.
	Yields int
	// Linger, if set, is asked after the yields, with the queued items
	// and the size of the previous group, whether to wait for more: the
	// writer then waits until want items are queued or d has passed.
	Linger func(queued, last int) (want int, d time.Duration)
	// Idle, if set, keeps the writer goroutine alive from New until
	// Close (without it, the goroutine runs only while there is work,
	// and keepIdle after).
	// It is called on the writer goroutine whenever the queue is empty,
	// before the writer waits, and returns how long the writer may wait
	// for work before calling it again (upkeep of a connection).
	Idle func() time.Duration
	// ErrClosed is what Submit returns after Close (default ErrClosed).
	ErrClosed error
}

func (c Config[T]) withDefaults() Config[T] {
	if c.MaxItems <= 0 {
		c.MaxItems = 256
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 4 << 20
	}
	if c.QueueItems <= 0 {
		c.QueueItems = 4 * c.MaxItems
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = 4 * c.MaxBytes
	}
	if c.Size == nil {
		c.Size = func(T) int { return 1 }
	}
	if c.Split == nil {
		c.Split = func(error) bool { return true }
	}
	if c.ErrClosed == nil {
		c.ErrClosed = ErrClosed
	}
	return c
}

// A Writer commits submitted items in groups. Create it with New.
type Writer[T any] struct {
	cfg Config[T]

	mu      sync.Mutex
	queue   []entry[T] // by value: Enqueue allocates nothing
	qBytes  int
	running bool          // a writer goroutine is running
	closed  bool          // Close was called
	waitFor int           // the writer sleeps until this many items are queued (0: not sleeping)
	wake    chan struct{} // wakes the writer (capacity 1)
	room    chan struct{} // closed, and replaced, when items leave the queue
	timer   *time.Timer   // sleep's, reused (only the writer goroutine sleeps)
	keep    time.Duration // keepIdle (tests shorten or lengthen it)
	wg      sync.WaitGroup
}

type entry[T any] struct {
	item T
	size int
	w    *waiter // nil for Enqueue
}

// waiter is a Submit call waiting for its item's outcome.
type waiter struct {
	err  error
	done chan struct{}
}

// New returns a Writer (and, with Config.Idle, starts its goroutine).
func New[T any](cfg Config[T]) *Writer[T] {
	if cfg.Commit == nil {
		panic("groupcommit: Config.Commit is required")
	}
	w := &Writer[T]{cfg: cfg.withDefaults(), wake: make(chan struct{}, 1), room: make(chan struct{}), keep: keepIdle}
	if w.cfg.Idle != nil {
		w.running = true
		w.wg.Add(1)
		go w.run()
	}
	return w
}

// Submit queues item and waits until the group holding it has committed,
// returning the item's error. If ctx ends first Submit returns ctx's
// error; an item already queued may still commit.
func (w *Writer[T]) Submit(ctx context.Context, item T) error {
	wt := &waiter{done: make(chan struct{})}
	if err := w.put(ctx, entry[T]{item: item, w: wt}); err != nil {
		return err
	}
	select {
	case <-wt.done:
		return wt.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Enqueue queues item without waiting for its commit (it waits only for
// room in the queue); its outcome reaches Config.Done alone.
func (w *Writer[T]) Enqueue(ctx context.Context, item T) error {
	return w.put(ctx, entry[T]{item: item})
}

// put adds e to the queue once there is room, starting the writer
// goroutine if none runs.
func (w *Writer[T]) put(ctx context.Context, e entry[T]) error {
	e.size = w.cfg.Size(e.item)
	w.mu.Lock()
	for {
		if w.closed {
			w.mu.Unlock()
			return w.cfg.ErrClosed
		}
		n := len(w.queue)
		if n == 0 || (n < w.cfg.QueueItems && w.qBytes+e.size <= w.cfg.QueueBytes) {
			break
		}
		room := w.room
		w.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
		w.mu.Lock()
	}
	w.queue = append(w.queue, e)
	w.qBytes += e.size
	if !w.running {
		w.running = true
		w.wg.Add(1)
		go w.run()
	} else if w.waitFor > 0 && len(w.queue) >= w.waitFor {
		w.waitFor = 0
		w.signal()
	}
	w.mu.Unlock()
	return nil
}

// signal wakes the writer; w.mu is held.
func (w *Writer[T]) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Close refuses new items, waits until everything queued has committed
// and the writer goroutine has returned. It is safe to call twice.
func (w *Writer[T]) Close() {
	w.mu.Lock()
	w.closed = true
	w.signal()
	w.mu.Unlock()
	w.wg.Wait()
}

// Closed reports whether Close was called.
func (w *Writer[T]) Closed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

// run is the writer goroutine.
func (w *Writer[T]) run() {
	defer w.wg.Done()
	last := 0
	for {
		group, ok := w.next(last)
		if !ok {
			return
		}
		last = len(group)
		w.settle(group)
	}
}

// next waits for work, gathers, and takes the next group. It returns
// false when the goroutine should end: closed and drained, or (without
// Idle) drained for keepIdle.
func (w *Writer[T]) next(last int) ([]entry[T], bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	kept := false
	for len(w.queue) == 0 {
		if w.closed || w.cfg.Idle == nil && kept {
			w.running = false
			return nil, false
		}
		if w.cfg.Idle == nil {
			kept = true
			w.sleep(1, w.keep)
			continue
		}
		w.mu.Unlock()
		d := w.cfg.Idle()
		w.mu.Lock()
		if len(w.queue) == 0 && !w.closed {
			w.sleep(1, d)
		}
	}
	w.gather(last)
	return w.take(), true
}

// keepIdle is how long a writer goroutine without Config.Idle waits for
// more work once the queue is drained before it ends. A commit runs deep
// in SQLite's transpiled C, so a goroutine started for a group grows its
// stack from 8 KiB, a copy at each doubling (BenchmarkPublishHandler,
// one publish at a time: 95k of 411k instructions per publish): kept a
// little, one goroutine and its stack serve a trickle of groups — at
// half the single-publish rate a group comes every few hundred µs.
const keepIdle = 5 * time.Millisecond

// gather lets a group grow before it is taken; w.mu is held.
func (w *Writer[T]) gather(last int) {
	for y := 0; y < w.cfg.Yields && len(w.queue) < w.cfg.MaxItems; y++ {
		n := len(w.queue)
		w.mu.Unlock()
		runtime.Gosched()
		w.mu.Lock()
		if len(w.queue) == n && y > 0 {
			break
		}
	}
	if w.cfg.Linger == nil || w.closed {
		return
	}
	want, d := w.cfg.Linger(len(w.queue), last)
	want = min(want, w.cfg.MaxItems)
	if d > 0 && len(w.queue) < want {
		w.sleep(want, d)
	}
}

// sleep waits, with w.mu released, until want items are queued, d has
// passed or Close is called; w.mu is held.
func (w *Writer[T]) sleep(want int, d time.Duration) {
	w.waitFor = want
	select { // drop a stale wake-up
	case <-w.wake:
	default:
	}
	w.mu.Unlock()
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	select {
	case <-w.wake:
	case <-w.timer.C:
	}
	w.timer.Stop()
	w.mu.Lock()
	w.waitFor = 0
}

// maxKeptQueue is the most entries whose array an empty queue keeps.
const maxKeptQueue = 1024

// take removes the next group from the queue, within the caps; w.mu is
// held and the queue is not empty.
func (w *Writer[T]) take() []entry[T] {
	n, bytes := 0, 0
	for n < len(w.queue) && n < w.cfg.MaxItems {
		s := w.queue[n].size
		if n > 0 && bytes+s > w.cfg.MaxBytes {
			break
		}
		bytes += s
		n++
	}
	group := make([]entry[T], n)
	copy(group, w.queue)
	k := copy(w.queue, w.queue[n:])
	clear(w.queue[k:])
	w.queue = w.queue[:k]
	if k == 0 && cap(w.queue) > maxKeptQueue {
		w.queue = nil // a burst's array (entries are by value) is let go once drained
	}
	w.qBytes -= bytes
	close(w.room)
	w.room = make(chan struct{})
	return group
}

// settle commits a group, splitting it on failure, and releases its
// callers.
func (w *Writer[T]) settle(group []entry[T]) {
	items := make([]T, len(group))
	for i := range group {
		items[i] = group[i].item
	}
	errs := make([]error, len(group))
	if w.cfg.Begin != nil {
		w.cfg.Begin(items)
	}
	w.commit(items, errs)
	if w.cfg.Done != nil {
		w.cfg.Done(items, errs)
	}
	for i := range group {
		if wt := group[i].w; wt != nil {
			wt.err = errs[i]
			close(wt.done)
		}
	}
}

// commit commits items; if that fails and the failure splits, it commits
// each half in turn, recursively.
func (w *Writer[T]) commit(items []T, errs []error) {
	err := w.cfg.Commit(items)
	if err == nil {
		return
	}
	if len(items) == 1 || !w.cfg.Split(err) {
		for i := range errs {
			errs[i] = err
		}
		return
	}
	h := len(items) / 2
	w.commit(items[:h], errs[:h])
	w.commit(items[h:], errs[h:])
}
