package sqlite

import "testing"

// TestBoxes checks that a box holds the value last given and is reused,
// without an allocation, while the value repeats.
func TestBoxes(t *testing.T) {
	var s boxedString
	var i boxedInt
	a, b := "msg_01", string([]byte("msg_01")) // equal, apart in memory
	if v := s.box(a); v != any("msg_01") {
		t.Fatalf("box(%q) = %v", a, v)
	}
	if n := testing.AllocsPerRun(100, func() { _ = s.box(b) }); n != 0 {
		t.Errorf("an equal string boxed again: %v allocations", n)
	}
	if v := s.box("other"); v != any("other") {
		t.Errorf("box(other) = %v", v)
	}
	if v := s.box(""); v != any("") {
		t.Errorf("box(\"\") = %v", v)
	}
	if v := i.box(1 << 40); v != any(int64(1<<40)) {
		t.Fatalf("box(1<<40) = %v", v)
	}
	if n := testing.AllocsPerRun(100, func() { _ = i.box(1 << 40) }); n != 0 {
		t.Errorf("an equal int boxed again: %v allocations", n)
	}
	if v := i.box(7); v != any(int64(7)) {
		t.Errorf("box(7) = %v", v)
	}
}
