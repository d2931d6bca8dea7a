package gateway

import (
	"context"
	"path/filepath"
	"testing"
	"time"
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

// TestSQLiteInsertEventsOneStatement checks the multi-row INSERT of a
// group: a key repeated within the statement or stored earlier is a
// duplicate with the first one's Seq, and the same id in another source
// is not.
func TestSQLiteInsertEventsOneStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	in, err := OpenSQLiteInbox(ctx, filepath.Join(t.TempDir(), "g.db"), "NORMAL")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	now := time.Now()
	first, err := in.Accept(ctx, AcceptParams{Source: "a", WebhookID: "z", ReceivedAt: now, ExpireAt: now})
	if err != nil {
		t.Fatal(err)
	}
	keys := [][2]string{{"a", "x"}, {"a", "y"}, {"a", "x"}, {"b", "x"}, {"a", "z"}}
	as := make([]*acceptOp, len(keys))
	for i, k := range keys {
		as[i] = &acceptOp{p: AcceptParams{Source: k[0], WebhookID: k[1], Body: []byte{}, ReceivedAt: now, ExpireAt: now}}
	}
	// The writer goroutine is idle (nothing else writes), so the test may
	// use its connection.
	if err := in.exec(ctx, func(ctx context.Context) error { return in.insertEvents(ctx, as) }); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		created bool
		seq     int64
	}{{true, first.Seq + 1}, {true, first.Seq + 2}, {false, first.Seq + 1}, {true, first.Seq + 3}, {false, first.Seq}}
	for i, a := range as {
		if a.created != want[i].created || a.res.Duplicate == want[i].created || a.res.Seq != want[i].seq {
			t.Errorf("%v: created %v %+v, want created %v seq %d", keys[i], a.created, a.res, want[i].created, want[i].seq)
		}
	}
}
