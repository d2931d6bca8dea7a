package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// item is a test write: n names it, size weighs it, bad makes every group
// holding it fail.
type item struct {
	n     int
	size  int
	bad   bool
	group int64 // set by the commit that wrote it
}

// log records the groups a writer committed.
type log struct {
	mu      sync.Mutex
	groups  [][]int // item numbers of each committed group
	bytes   []int
	commits atomic.Int64 // Commit calls, failed ones too
}

func (l *log) commit(group []*item) error {
	g := l.commits.Add(1)
	for _, it := range group {
		if it.bad {
			return fmt.Errorf("item %d is bad", it.n)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var ns []int
	b := 0
	for _, it := range group {
		ns = append(ns, it.n)
		b += it.size
		it.group = g
	}
	l.groups = append(l.groups, ns)
	l.bytes = append(l.bytes, b)
	return nil
}

func (l *log) committed() map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[int]int{}
	for _, g := range l.groups {
		for _, n := range g {
			seen[n]++
		}
	}
	return seen
}

func TestConcurrentSubmitsShareGroups(t *testing.T) {
	t.Parallel()
	var l log
	w := New(Config[*item]{Commit: l.commit, MaxItems: 16, Yields: 4})
	defer w.Close()
	const n = 500
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := w.Submit(context.Background(), &item{n: i}); err != nil {
				t.Errorf("submit %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	seen := l.committed()
	for i := range n {
		if seen[i] != 1 {
			t.Fatalf("item %d committed %d times", i, seen[i])
		}
	}
	for _, g := range l.groups {
		if len(g) > 16 {
			t.Fatalf("a group of %d items, cap 16", len(g))
		}
	}
	if len(l.groups) >= n {
		t.Fatalf("%d commits for %d concurrent items: no group formed", len(l.groups), n)
	}
}

// blocker is a commit that waits until released, to hold the writer.
type blocker struct {
	entered chan struct{}
	release chan struct{}
	log
}

func newBlocker() *blocker {
	return &blocker{entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (b *blocker) commit(group []*item) error {
	b.entered <- struct{}{}
	<-b.release
	return b.log.commit(group)
}

func TestSubmitHonoursContext(t *testing.T) {
	t.Parallel()
	b := newBlocker()
	w := New(Config[*item]{Commit: b.commit, MaxItems: 1, QueueItems: 1})
	defer w.Close()
	defer close(b.release)

	// The first item is being committed (and blocks); its caller gives up.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- w.Submit(ctx, &item{n: 1}) }()
	<-b.entered
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("submit while its group commits, context cancelled: %v", err)
	}
	// The second fills the queue; the third finds no room and gives up
	// when its deadline passes, without being queued.
	go func() { errc <- w.Submit(context.Background(), &item{n: 2}) }()
	waitFor(t, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.queue) == 1 })
	ctx3, cancel3 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel3()
	if err := w.Submit(ctx3, &item{n: 3}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("submit to a full queue: %v", err)
	}
	if err := w.Enqueue(ctx3, &item{n: 4}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("enqueue to a full queue: %v", err)
	}
	b.release <- struct{}{} // item 1 commits
	<-b.entered
	b.release <- struct{}{} // item 2 commits
	if err := <-errc; err != nil {
		t.Fatalf("item 2: %v", err)
	}
	seen := b.committed()
	if seen[1] != 1 || seen[2] != 1 || seen[3] != 0 || seen[4] != 0 {
		t.Fatalf("committed %v, want items 1 and 2 only", seen)
	}
}

func TestBytesCap(t *testing.T) {
	t.Parallel()
	b := newBlocker()
	w := New(Config[*item]{Commit: b.commit, Size: func(it *item) int { return it.size },
		MaxItems: 100, MaxBytes: 1000, QueueItems: 100, QueueBytes: 2500})
	defer w.Close()
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Submit(context.Background(), &item{n: 0, size: 10}) })
	<-b.entered // the writer is busy: what follows queues up
	for i := 1; i <= 6; i++ {
		wg.Go(func() { _ = w.Submit(context.Background(), &item{n: i, size: 400}) })
		waitFor(t, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.queue) == i })
	}
	// 6 × 400 = 2400 bytes are queued; one more does not fit in 2500.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := w.Submit(ctx, &item{n: 7, size: 400}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("submit past the queue's byte bound: %v", err)
	}
	// An item larger than a whole group goes alone.
	wg.Go(func() { _ = w.Submit(context.Background(), &item{n: 8, size: 5000}) })
	close(b.release)
	wg.Wait()
	for i, g := range b.groups {
		if b.bytes[i] > 1000 && len(g) > 1 {
			t.Fatalf("group %v holds %d bytes, cap 1000", g, b.bytes[i])
		}
	}
	// 0 alone, then 400-byte items two by two, then the large one alone.
	want := "[[0] [1 2] [3 4] [5 6] [8]]"
	if got := fmt.Sprint(b.groups); got != want {
		t.Fatalf("groups %s, want %s", got, want)
	}
}

func TestFailedGroupSplits(t *testing.T) {
	t.Parallel()
	for _, split := range []bool{true, false} {
		t.Run(fmt.Sprint("split=", split), func(t *testing.T) {
			t.Parallel()
			b := newBlocker()
			var doneErrs []error
			w := New(Config[*item]{Commit: b.commit, Split: func(error) bool { return split },
				Done: func(g []*item, errs []error) {
					if len(g) > 1 {
						doneErrs = errs
					}
				}})
			defer w.Close()
			errs := make([]error, 9)
			var wg sync.WaitGroup
			wg.Go(func() { errs[0] = w.Submit(context.Background(), &item{n: 0}) })
			<-b.entered
			for i := 1; i <= 8; i++ {
				wg.Go(func() { errs[i] = w.Submit(context.Background(), &item{n: i, bad: i == 5}) })
				waitFor(t, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.queue) == i })
			}
			close(b.release)
			wg.Wait()
			for i, err := range errs {
				failed := err != nil
				if want := i == 5 || (!split && i > 0); failed != want {
					t.Fatalf("item %d: error %v, want failure %v", i, err, want)
				}
			}
			if split {
				// 8 items, one bad: the group, both halves, the bad half's
				// halves and so on down to the bad item: 1 + 2 + 2 + 2 = 7
				// commits, plus item 0's.
				if n := b.commits.Load(); n != 8 {
					t.Fatalf("%d commits, want 8", n)
				}
				if fmt.Sprint(b.groups) != "[[0] [1 2 3 4] [6] [7 8]]" {
					t.Fatalf("groups %v", b.groups)
				}
			}
			if len(doneErrs) != 8 || doneErrs[4] == nil {
				t.Fatalf("Done saw %v", doneErrs)
			}
		})
	}
}

// TestEachCallBoundedByItsGroup is the stuck-publisher case. Before this
// package, the first caller to find the writer idle committed for everyone
// until the queue ran dry (one call took 2.73 s under a steady trickle).
// Now a call waits for the group committing when it arrived and its own:
// items queued behind a group in commit form the next group, and their
// calls return when that group has committed, while later items are still
// queued behind the group after it. Each commit is held until the test
// lets it go, so the steps are exact.
func TestEachCallBoundedByItsGroup(t *testing.T) {
	t.Parallel()
	entered := make(chan []int, 100)
	proceed := make(chan struct{})
	w := New(Config[*item]{Yields: 4, Commit: func(g []*item) error {
		ns := make([]int, len(g))
		for i, it := range g {
			ns[i] = it.n
		}
		slices.Sort(ns) // concurrent calls queue in any order
		entered <- ns
		<-proceed
		return nil
	}})
	var wg sync.WaitGroup
	defer func() { // on failure too: let every commit through
		close(proceed)
		wg.Wait()
		w.Close()
	}()
	submit := func(lo, hi int) chan struct{} {
		done := make(chan struct{})
		var calls sync.WaitGroup
		for i := lo; i <= hi; i++ {
			calls.Add(1)
			wg.Go(func() {
				defer calls.Done()
				if err := w.Submit(context.Background(), &item{n: i}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Go(func() { calls.Wait(); close(done) })
		return done
	}
	queued := func(n int) {
		waitFor(t, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.queue) == n })
	}
	returned := func(done chan struct{}, what string) {
		t.Helper()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: calls still waiting 10 s after their group committed", what)
		}
	}
	group := func(want string) {
		t.Helper()
		select {
		case g := <-entered:
			if got := fmt.Sprint(g); got != want {
				t.Fatalf("group %s, want %s", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no group committed within 10 s (want %s)", want)
		}
	}

	first := submit(0, 0)
	group("[0]") // committing, held
	second := submit(1, 5)
	queued(5)
	proceed <- struct{}{}
	returned(first, "group [0]")
	group("[1 2 3 4 5]") // everything queued behind [0], held
	third := submit(6, 8)
	queued(3)
	proceed <- struct{}{}
	// Items 1–5 return now, while 6–8 are still queued behind them (the
	// old design released nobody until the queue was empty).
	returned(second, "group [1 2 3 4 5]")
	group("[6 7 8]")
	select {
	case <-third:
		t.Fatal("calls of the group in commit returned before it committed")
	default:
	}
	proceed <- struct{}{}
	returned(third, "group [6 7 8]")
}

func TestCloseDrainsAndRefuses(t *testing.T) {
	t.Parallel()
	b := newBlocker()
	errClosed := errors.New("inbox closed")
	w := New(Config[*item]{Commit: b.commit, MaxItems: 2, ErrClosed: errClosed})
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Submit(context.Background(), &item{n: 0}) })
	<-b.entered
	for i := 1; i <= 5; i++ {
		if err := w.Enqueue(context.Background(), &item{n: i}); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan struct{})
	go func() { w.Close(); close(closed) }()
	waitFor(t, w.Closed)
	if err := w.Submit(context.Background(), &item{n: 9}); !errors.Is(err, errClosed) {
		t.Fatalf("submit after close: %v", err)
	}
	close(b.release)
	<-closed
	wg.Wait()
	if got := fmt.Sprint(b.groups); got != "[[0] [1 2] [3 4] [5]]" {
		t.Fatalf("groups %s", got)
	}
	w.Close() // twice is fine
}

func TestIdleKeepsTheWriter(t *testing.T) {
	t.Parallel()
	var idles atomic.Int64
	var l log
	w := New(Config[*item]{Commit: l.commit, Idle: func() time.Duration {
		idles.Add(1)
		return time.Millisecond
	}})
	waitFor(t, func() bool { return idles.Load() >= 3 })
	if err := w.Submit(context.Background(), &item{n: 1}); err != nil {
		t.Fatal(err)
	}
	n := idles.Load()
	waitFor(t, func() bool { return idles.Load() > n+2 })
	w.Close() // goleak checks the goroutine ended
}

func TestLingerWaitsForFullerGroups(t *testing.T) {
	t.Parallel()
	b := newBlocker()
	close(b.release)
	w := New(Config[*item]{Commit: b.commit, Linger: func(queued, last int) (int, time.Duration) {
		return 3, time.Hour // only a third item ends the wait
	}})
	defer w.Close()
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { _ = w.Submit(context.Background(), &item{n: i}) })
	}
	wg.Wait()
	if len(b.groups) != 1 || len(b.groups[0]) != 3 {
		t.Fatalf("groups %v, want one of 3", b.groups)
	}
}

// TestDrainedWriterServesTheNextGroup: once the queue is drained the
// writer goroutine waits a while (keepIdle) and commits the next group
// itself, with the stack it grew, instead of ending and leaving the next
// group to a new goroutine; after the wait it ends.
func TestDrainedWriterServesTheNextGroup(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var ids []string
	w := New(Config[*item]{Commit: func([]*item) error {
		mu.Lock()
		ids = append(ids, goroutineID())
		mu.Unlock()
		return nil
	}})
	defer w.Close()
	w.keep = time.Hour // longer than any pause of a loaded machine
	if err := w.Submit(context.Background(), &item{n: 1}); err != nil {
		t.Fatal(err)
	}
	// The goroutine either waits for more (w.waitFor set while it
	// sleeps) or has ended.
	waitFor(t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return !w.running || w.waitFor > 0
	})
	if err := w.Submit(context.Background(), &item{n: 2}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(ids) != 2 || ids[0] != ids[1] {
		t.Errorf("groups committed on goroutines %v, want one goroutine for both", ids)
	}
	mu.Unlock()

	w.mu.Lock()
	w.keep = time.Millisecond
	w.mu.Unlock()
	if err := w.Submit(context.Background(), &item{n: 3}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { // ends by itself once keep has passed
		w.mu.Lock()
		defer w.mu.Unlock()
		return !w.running
	})
}

// goroutineID is the calling goroutine's number, from its stack header.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _, _ := strings.Cut(strings.TrimPrefix(string(buf), "goroutine "), " ")
	return id
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(100 * time.Microsecond)
	}
}
