package core_test

import (
	"strings"
	"testing"

	"github.com/longhook/longhook/internal/core"
)

// DepthExceeded counts objects and arrays, not brackets inside strings
// (escaped quotes included), and points at the first level past the limit.
func TestDepthExceeded(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		raw   string
		limit int
		want  int
	}{
		{`{}`, 1, -1},
		{`{}`, 0, 0},
		{`{"a":[{}]}`, 3, -1},
		{`{"a":[{}]}`, 2, 6},
		{`{"a":"[[[{{{"}`, 1, -1},
		{`{"a":"\"[[[","b":[1]}`, 1, 17},
		{`{"a\\":[[1]]}`, 2, 8},
		{`[[],[],{"x":[]}]`, 2, 12},
		{strings.Repeat("[", 70) + strings.Repeat("]", 70), 64, 64},
	} {
		if got := core.DepthExceeded([]byte(c.raw), c.limit); got != c.want {
			t.Errorf("DepthExceeded(%s, %d) = %d, want %d", c.raw, c.limit, got, c.want)
		}
	}
	err := core.CheckDepth("data", []byte(`{"a":{"b":{}}}`), 2)
	if !core.IsInvalid(err) || !strings.Contains(err.Error(), "data nests deeper than 2 levels of objects and arrays (the level 3 opens at byte 10 of data)") {
		t.Fatalf("CheckDepth: %v", err)
	}
}
