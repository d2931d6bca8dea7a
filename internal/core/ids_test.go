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
