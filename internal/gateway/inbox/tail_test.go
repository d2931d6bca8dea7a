package inbox

import "testing"

func TestTailEviction(t *testing.T) {
	t.Parallel()
	tl := NewTail(10, 3, 1<<20)
	for i := int64(11); i <= 15; i++ {
		tl.Add([]Event{{Seq: i, Source: "a"}})
	}
	if _, _, ok := tl.After("a", 11, 10); ok {
		t.Error("served a position below the floor")
	}
	evs, next, ok := tl.After("a", 12, 10)
	if !ok || len(evs) != 3 || next != 15 {
		t.Errorf("after(12) = %v %d %v", evs, next, ok)
	}
	if evs, next, ok := tl.After("b", 12, 10); !ok || len(evs) != 0 || next != 15 {
		t.Errorf("quiet source: %v %d %v", evs, next, ok)
	}
}
