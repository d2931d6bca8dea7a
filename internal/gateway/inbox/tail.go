package inbox

import (
	"sort"
	"sync"
)

// TailEvents and TailBytes bound the in-memory tail of recent events.
const (
	TailEvents = 8192
	TailBytes  = 32 << 20
)

// Tail keeps the most recently committed events in memory, so forwarders
// and listen streams that keep up read them without touching the store
// (in WAL mode every commit invalidates a reader's page cache, which makes
// reading back what was just written surprisingly costly).
//
// It holds every committed event with floor < Seq, up to maxEvents events
// and maxBytes of bodies; evicting the oldest raises floor. A reader whose
// position is below floor reads the store instead.
type Tail struct {
	mu        sync.RWMutex
	events    []Event // ascending Seq; a sliding window over buf
	floor     int64
	last      int64 // highest Seq added, or floor
	bytes     int
	maxEvents int
	maxBytes  int
}

// NewTail returns a tail holding nothing above floor.
func NewTail(floor int64, maxEvents, maxBytes int) *Tail {
	return &Tail{floor: floor, last: floor, maxEvents: maxEvents, maxBytes: maxBytes, events: make([]Event, 0, maxEvents)}
}

// Add appends committed events, in Seq order.
func (t *Tail) Add(evs []Event) {
	if len(evs) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range evs {
		t.bytes += len(e.Body)
	}
	t.events = append(t.events, evs...)
	t.last = evs[len(evs)-1].Seq
	drop := 0
	for drop < len(t.events) && (len(t.events)-drop > t.maxEvents || t.bytes > t.maxBytes) {
		t.bytes -= len(t.events[drop].Body)
		t.floor = t.events[drop].Seq
		drop++
	}
	if drop > 0 {
		// Compact into a fresh slice now and then, so the backing array
		// does not grow without bound and evicted bodies can be collected.
		rest := t.events[drop:]
		if cap(rest)-len(rest) < len(rest)/4+1 {
			fresh := make([]Event, len(rest), 2*t.maxEvents)
			copy(fresh, rest)
			rest = fresh
		}
		t.events = rest
	}
}

// after returns up to limit events of source with Seq > after and the
// position the scan reached (see Inbox.After), or ok false if events
// after that position were already evicted.
func (t *Tail) After(source string, after int64, limit int) (out []Event, next int64, ok bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if after < t.floor {
		return nil, 0, false
	}
	i := sort.Search(len(t.events), func(i int) bool { return t.events[i].Seq > after })
	for ; i < len(t.events) && len(out) < limit; i++ {
		if t.events[i].Source == source {
			out = append(out, t.events[i])
		}
	}
	if len(out) == limit {
		return out, out[len(out)-1].Seq, true
	}
	return out, max(after, t.last), true
}

// lastSeq returns the highest Seq committed (as far as the tail knows).
func (t *Tail) LastSeq() int64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.last
}
