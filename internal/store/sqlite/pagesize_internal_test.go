package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/storetest"
)

// headerPageSize reads the page size from the database file's header
// (offset 16, big-endian; 1 stands for 65536), as SQLite's file format
// defines it.
func headerPageSize(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 100 {
		t.Fatalf("reading the database header: %v (%d bytes)", err, len(b))
	}
	n := int(binary.BigEndian.Uint16(b[16:18]))
	if n == 1 {
		n = 65536
	}
	return n
}

func pragmaInt(t *testing.T, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, name string) int64 {
	t.Helper()
	var v int64
	if err := q.QueryRowContext(context.Background(), "PRAGMA "+name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

// TestNewDatabasePageSize: a new file gets newPageSize pages, set before
// WAL mode first wrote the file.
func TestNewDatabasePageSize(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "longhook.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := headerPageSize(t, path); got != newPageSize {
		t.Errorf("the file's header says %d-byte pages, want %d", got, newPageSize)
	}
	if got := pragmaInt(t, s.r, "page_size"); got != newPageSize {
		t.Errorf("PRAGMA page_size = %d, want %d", got, newPageSize)
	}
}

// otherPageSize is a page size other than newPageSize: a file made with
// it (by another SQLite tool, or converted by an operator) keeps it.
const otherPageSize = 16384

// openOld makes a database file with otherPageSize pages, with the whole
// schema, and closes it.
func openOld(t testing.TB, path string) {
	t.Helper()
	s, err := OpenWithOptions(context.Background(), path, Options{pageSize: otherPageSize})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestExistingDatabaseKeepsPageSize: a file made with other pages keeps
// them (SQLite cannot change the page size of a WAL database), keeps its
// data, and takes new writes.
func TestExistingDatabaseKeepsPageSize(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "longhook.db")
	s, err := OpenWithOptions(ctx, path, Options{pageSize: otherPageSize})
	if err != nil {
		t.Fatal(err)
	}
	sc := storetest.NewAttemptScenario()
	before := sc.Run(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := headerPageSize(t, path); got != otherPageSize {
		t.Fatalf("the old file has %d-byte pages, want %d", got, otherPageSize)
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := pragmaInt(t, s.r, "page_size"); got != otherPageSize {
		t.Errorf("PRAGMA page_size = %d after reopening, want %d", got, otherPageSize)
	}
	// What the old file holds reads the same, and it takes the same
	// writes again.
	storetest.CompareStored(t, "16 KiB file reopened", s, before)
	after := storetest.NewAttemptScenario().Run(t, s)
	if len(after) != len(before) {
		t.Errorf("the scenario again: %d deliveries, want %d", len(after), len(before))
	}
	for id, h := range after {
		if h.Delivery.Status != core.DeliverySucceeded {
			t.Errorf("the scenario again: delivery %s is %s, want succeeded", id, h.Delivery.Status)
		}
	}
	var ok string
	if err := s.r.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Errorf("integrity_check = %q, %v", ok, err)
	}
	if got := headerPageSize(t, path); got != otherPageSize {
		t.Errorf("the file has %d-byte pages after new writes, want %d", got, otherPageSize)
	}
}

// TestConformanceOldPageSize runs the store contract on files made with
// otherPageSize pages and reopened with the default options.
func TestConformanceOldPageSize(t *testing.T) {
	storetest.Run(t, func(t *testing.T) core.Store {
		path := filepath.Join(t.TempDir(), "longhook.db")
		openOld(t, path)
		s, err := Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestPragmas: the settings each of the store's connections runs with.
func TestPragmas(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sync string
		want int64
	}{{"", 1}, {"FULL", 2}} {
		t.Run("synchronous="+tc.sync, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, err := OpenWithOptions(ctx, filepath.Join(t.TempDir(), "longhook.db"), Options{Synchronous: tc.sync, ReadConns: 3})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var mode string
			if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
				t.Errorf("writer: journal_mode = %q, %v; want wal", mode, err)
			}
			for name, want := range map[string]int64{
				"synchronous":        tc.want,
				"page_size":          newPageSize,
				"cache_size":         -writerCacheKiB, // small on purpose, see OpenWithOptions
				"wal_autocheckpoint": walBackstopPages,
				"journal_size_limit": 64 << 20,
				"temp_store":         2, // MEMORY
				"foreign_keys":       0,
				"query_only":         0,
				"busy_timeout":       10000,
			} {
				if got := pragmaInt(t, s.w, name); got != want {
					t.Errorf("writer: %s = %d, want %d", name, got, want)
				}
			}
			// Every connection of the read pool, held at once.
			var conns []*sql.Conn
			for range 3 {
				c, err := s.r.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				conns = append(conns, c)
			}
			for i, c := range conns {
				for name, want := range map[string]int64{
					"query_only":   1,
					"cache_size":   -16384,
					"temp_store":   2,
					"page_size":    newPageSize,
					"busy_timeout": 10000,
				} {
					if got := pragmaInt(t, c, name); got != want {
						t.Errorf("reader %d: %s = %d, want %d", i, name, got, want)
					}
				}
			}
			if got := pragmaInt(t, s.ck, "page_size"); got != newPageSize {
				t.Errorf("checkpointer: page_size = %d, want %d", got, newPageSize)
			}
		})
	}
}
