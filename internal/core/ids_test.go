package core

import (
	"testing"
	"time"
)

func TestSortableIDBound(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 26, 12, 0, 0, 500_000_000, time.UTC)
	bound := SortableIDBound(at)
	if len(bound) != 10 {
		t.Fatalf("bound %q: want 10 characters", bound)
	}
	for range 1000 {
		if id := NewSortableID(at.Add(-time.Millisecond)); id >= bound {
			t.Fatalf("id of the millisecond before %s sorts at or above the bound %s", id, bound)
		}
		if id := NewSortableID(at); id < bound {
			t.Fatalf("id of the same millisecond %s sorts below the bound %s", id, bound)
		}
		if id := NewMessageID(at.Add(time.Hour)); id < "msg_"+bound {
			t.Fatalf("later message id %s sorts below msg_%s", id, bound)
		}
	}
}

func TestMessageIDHelpers(t *testing.T) {
	t.Parallel()
	for _, at := range []time.Time{time.UnixMilli(0), time.UnixMilli(1), time.Date(2026, 11, 26, 23, 0, 0, 123e6, time.UTC)} {
		ms := at.UnixMilli()
		id := NewMessageID(at)
		if !ValidMessageID(id) {
			t.Fatalf("ValidMessageID(%q) = false", id)
		}
		if got := MessageIDMillis(id); got != ms {
			t.Fatalf("MessageIDMillis(%q) = %d, want %d", id, got, ms)
		}
		lo, hi := MessageIDFloor(ms), MessageIDFloor(ms+1)
		if !ValidMessageID(lo) || !(lo <= id && id < hi) || MessageIDMillis(lo) != ms {
			t.Fatalf("floor(%d) = %s, floor(+1) = %s, id %s", ms, lo, hi, id)
		}
	}
	for _, bad := range []string{"", "msg_", "evt_01jbb0000000000000000000000", "msg_01jbb00000000000000000000", "msg_81jbb000000000000000000000", "msg_01jbb00000000000000000000u", "msg_01JBB000000000000000000000"} {
		if ValidMessageID(bad) {
			t.Errorf("ValidMessageID(%q) = true", bad)
		}
	}
}
