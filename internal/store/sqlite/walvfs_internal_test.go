package sqlite

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// threadWrites is the write system calls this OS thread has made
// (/proc/thread-self/io's syscw).
func threadWrites(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/io")
	if err != nil {
		t.Skipf("no per-thread I/O accounting: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no syscw in /proc/thread-self/io")
	return 0
}

// TestWALFrameOneWrite: through the store's VFS a commit appends each WAL
// frame (24-byte header and page) in one write system call — SQLite's
// unix VFS makes two — and the file it leaves is an ordinary WAL
// database: the plain unix VFS reads every row back after the writer is
// gone, and the integrity check passes.
func TestWALFrameOneWrite(t *testing.T) {
	if err := registerWALVFS(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "f.db")
	file := "file:" + (&url.URL{Path: path}).EscapedPath()
	db, err := sql.Open("sqlite", file+"?vfs="+walVFSName+"&_pragma=wal_autocheckpoint(0)&_pragma=synchronous(NORMAL)&_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX t_v ON t (v)`); err != nil {
		t.Fatal(err)
	}
	walSize := func() int64 {
		st, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	const frame = 4096 + 24
	rows := 0
	for commit := range 20 {
		// The connection's goroutine stays on this thread, so the
		// thread's write count is the commit's.
		runtime.LockOSThread()
		before, size := threadWrites(t), walSize()
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		// A few pages of table and index per commit.
		for range 3 + commit%5*20 {
			rows++
			if _, err := tx.ExecContext(ctx, `INSERT INTO t (v) VALUES (?)`, strings.Repeat(strconv.Itoa(rows), 40)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		writes, frames := threadWrites(t)-before, (walSize()-size)/frame
		runtime.UnlockOSThread()
		if frames < 2 {
			t.Fatalf("commit %d appended %d frames; the test needs more", commit, frames)
		}
		if int64(writes) != frames {
			t.Fatalf("commit %d: %d write system calls for %d WAL frames, want one per frame", commit, writes, frames)
		}
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	// Read back through the unix VFS while the WAL still holds every
	// commit (no checkpoint ran), then after the writer is gone.
	check := func() {
		plain, err := sql.Open("sqlite", file+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		var n int
		var ok string
		if err := plain.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if err := plain.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if n != rows || ok != "ok" {
			t.Fatalf("unix VFS reads %d rows (want %d), integrity %q", n, rows, ok)
		}
	}
	check()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	check()
}
