package sqlite

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

func openRawTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "longhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// rawEvent is an event of project p with one delivery, d-<id>, leased to
// "test".
func rawEvent(id string, payload []byte) core.NewEvent {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return core.NewEvent{
		Event: core.Event{ID: id, ProjectID: "p", Type: "t", Payload: payload, CreateTime: at},
		Deliveries: []core.Delivery{{ID: "d-" + id, URI: "http://example.test/", LeaseOwner: "test",
			Status: core.DeliveryPending, NextAttemptTime: at.Add(time.Minute)}},
	}
}

// count is the number of rows of table (a constant in the tests).
func count(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.r.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// publishWorks checks that the writer connection takes a new transaction:
// a failed one must not be left open on it.
func publishWorks(t *testing.T, s *Store, id string) {
	t.Helper()
	if _, err := s.PublishEvents(context.Background(), []core.NewEvent{rawEvent(id, nil)}); err != nil {
		t.Fatalf("a publish after the failed one: %v", err)
	}
	// And the database/sql transactions on the same connection.
	if err := s.ReleaseDeliveries(context.Background(), "test", []string{"d-" + id}); err != nil {
		t.Fatalf("a database/sql write after the failed one: %v", err)
	}
}

// A publish whose second event repeats an id fails with ErrAlreadyExists,
// and its first event (written before the failing statement) is not kept.
func TestRawTxRollsBackOnError(t *testing.T) {
	t.Parallel()
	s := openRawTest(t)
	ctx := context.Background()
	if _, err := s.PublishEvents(ctx, []core.NewEvent{rawEvent("a", nil)}); err != nil {
		t.Fatal(err)
	}
	// The idempotency key makes the events go in one at a time, so "b"
	// is written before "a" fails.
	b, a := rawEvent("b", nil), rawEvent("a", nil)
	b.Event.IdempotencyKey, a.Event.IdempotencyKey = "kb", "ka"
	if _, err := s.PublishEvents(ctx, []core.NewEvent{b, a}); !errors.Is(err, core.ErrAlreadyExists) {
		t.Fatalf("got %v, want ErrAlreadyExists", err)
	}
	if _, err := s.GetEvent(ctx, "p", "b"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("event b of the failed publish: got %v, want ErrNotFound", err)
	}
	publishWorks(t, s, "c")
	if n := count(t, s, "events"); n != 2 {
		t.Errorf("%d events, want 2 (a, c)", n)
	}
}

// A full database refuses a publish with core.ErrUnavailable, writes none
// of it, and leaves the store writable once there is room.
func TestRawTxDiskFull(t *testing.T) {
	t.Parallel()
	s := openRawTest(t)
	ctx := context.Background()
	var pages int
	if err := s.w.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec(fmt.Sprintf(`PRAGMA max_page_count = %d`, pages)); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 64<<10)
	evs := []core.NewEvent{rawEvent("a", big), rawEvent("b", big)}
	if _, err := s.PublishEvents(ctx, evs); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if _, err := s.w.Exec(`PRAGMA max_page_count = 4294967294`); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "events") + count(t, s, "deliveries") + count(t, s, "stats"); n != 0 {
		t.Errorf("%d rows after the refused publish, want none", n)
	}
	publishWorks(t, s, "c")
}

// A body that panics leaves nothing written and no transaction open;
// the store goes on (database/sql closes the connection; the statements
// are prepared again on the next).
func TestRawTxPanic(t *testing.T) {
	t.Parallel()
	s := openRawTest(t)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		_ = s.inRawTx(context.Background(), func(tx *rawTx) error {
			if err := addStatsRow(tx); err != nil {
				t.Error(err)
			}
			panic("body")
		})
	}()
	rolledBack(t, s, "the body that panicked")
}

// A context that ends while the body runs rolls the transaction back:
// the caller gets the context's error and nothing is written.
func TestRawTxCancelled(t *testing.T) {
	t.Parallel()
	s := openRawTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	err := s.inRawTx(ctx, func(tx *rawTx) error {
		err := addStatsRow(tx)
		cancel()
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	rolledBack(t, s, "the cancelled transaction")
}

// The statements are prepared again on a connection they were not
// prepared on (database/sql replaces a connection it found broken).
func TestRawStmtsFollowTheConnection(t *testing.T) {
	t.Parallel()
	s := openRawTest(t)
	var first *rawStmts
	if err := s.withRaw(context.Background(), func(st *rawStmts) error {
		first = st
		st.conn = nil // as if prepared on another connection
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	publishWorks(t, s, "a")
	if s.raw == first || s.raw == nil {
		t.Fatal("the statements were not prepared again")
	}
	first.close() // dropped, not closed, by the store: their connection is gone in real life
}

// addStatsRow writes one stats row in tx: a write the tests look for
// after a rollback.
func addStatsRow(tx *rawTx) error {
	return addStats(tx, []core.StatsDelta{{
		StatsKey:    core.StatsKey{ProjectID: "p", WebhookID: core.StatsTotal},
		StatsCounts: core.StatsCounts{Events: 1},
	}})
}

// rolledBack checks that by left no stats row behind and that the store
// still publishes (no transaction left open on the writer).
func rolledBack(t *testing.T, s *Store, by string) {
	t.Helper()
	if n := count(t, s, "stats"); n != 0 {
		t.Errorf("%d stats rows written by %s", n, by)
	}
	publishWorks(t, s, "a")
}

// Close leaves alone the statements of a writer connection database/sql
// has replaced: they went with it (finalizing them on the closed handle
// crashed the process — seen after a full disk in TestServeDiskFull).
func TestCloseAfterTheWriterWasReplaced(t *testing.T) {
	t.Parallel()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "longhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	publishWorks(t, s, "a") // the raw statements are prepared
	conn, err := s.w.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// A connection whose Raw reports it bad is closed by database/sql,
	// and with it the statements prepared on it.
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
	if s.raw == nil {
		t.Fatal("no raw statements to leave alone")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
