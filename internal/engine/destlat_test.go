package engine

import (
	"strconv"
	"testing"
	"time"
)

// A destination's state mirrors its latency record (what the cap and
// parking checks read instead of the map): filled from the map when the
// state is made, updated with it after every attempt, and reset with it
// when the map is started over.
func TestDestStateMirrorsLatency(t *testing.T) {
	t.Parallel()
	e := New(Config{Workers: 8, PerDestination: 4})
	check := func(what, dest string, d *destState) {
		t.Helper()
		lat, known := e.latency[dest]
		if d.lat != lat || d.known != known {
			t.Fatalf("%s: state has %v (known %v), map %v (known %v)", what, d.lat, d.known, lat, known)
		}
		if got, want := e.capIn(dest, d), e.capOf(dest); got != want {
			t.Fatalf("%s: cap from the state %d, from the map %d", what, got, want)
		}
		if got, want := e.parkLimit(dest, d), e.parkLimit(dest, nil); got != want {
			t.Fatalf("%s: park limit from the state %d, from the map %d", what, got, want)
		}
	}
	d := e.newDestState("d")
	e.dests["d"] = d
	check("new", "d", d)
	if e.capIn("d", d) != 1 {
		t.Fatalf("cap %d before any attempt ended; want 1 (slow start)", e.capIn("d", d))
	}
	e.noteLatency("d", d, 10*time.Millisecond)
	check("first attempt", "d", d)
	e.noteLatency("d", d, 2*time.Millisecond)
	check("second attempt", "d", d)
	if d.lat != 9*time.Millisecond {
		t.Fatalf("average %v; want 9ms", d.lat)
	}
	check("made again", "d", e.newDestState("d"))

	// The map started over: every live state forgets its record too.
	for i := range 100001 {
		e.latency["x"+strconv.Itoa(i)] = time.Millisecond
	}
	o := e.newDestState("x1")
	e.dests["x1"] = o
	e.noteLatency("d", d, 4*time.Millisecond)
	check("after the reset, the attempt's destination", "d", d)
	check("after the reset, another destination", "x1", o)
	if o.known || len(e.latency) != 1 {
		t.Fatalf("after the reset: other state known %v, %d records; want false, 1", o.known, len(e.latency))
	}
}
