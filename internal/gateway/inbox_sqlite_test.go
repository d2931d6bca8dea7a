package gateway

import (
	"context"
	"path/filepath"
	"testing"
)

func TestSQLiteInbox(t *testing.T) {
	t.Parallel()
	runInboxSuite(t, func(t *testing.T) (Inbox, func(t *testing.T) Inbox) {
		path := filepath.Join(t.TempDir(), "inbox.db")
		open := func(t *testing.T) Inbox {
			in, err := OpenSQLiteInbox(context.Background(), path, "NORMAL")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = in.Close() })
			return in
		}
		return open(t), open
	})
}

func TestTailEviction(t *testing.T) {
	t.Parallel()
	tl := newTail(10, 3, 1<<20)
	for i := int64(11); i <= 15; i++ {
		tl.add([]Event{{Seq: i, Source: "a"}})
	}
	if _, _, ok := tl.after("a", 11, 10); ok {
		t.Error("served a position below the floor")
	}
	evs, next, ok := tl.after("a", 12, 10)
	if !ok || len(evs) != 3 || next != 15 {
		t.Errorf("after(12) = %v %d %v", evs, next, ok)
	}
	if evs, next, ok := tl.after("b", 12, 10); !ok || len(evs) != 0 || next != 15 {
		t.Errorf("quiet source: %v %d %v", evs, next, ok)
	}
}
