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

// threadWrites is the write system calls this OS thread has made and the
// bytes they wrote (/proc/thread-self/io's syscw and wchar).
func threadWrites(t *testing.T) (calls, bytes int64) {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/io")
	if err != nil {
		t.Skipf("no per-thread I/O accounting: %v", err)
	}
	found := 0
	for _, line := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(line, ": ")
		if !ok || (name != "syscw" && name != "wchar") {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if name == "syscw" {
			calls = n
		} else {
			bytes = n
		}
		found++
	}
	if found != 2 {
		t.Skip("no syscw or wchar in /proc/thread-self/io")
	}
	return calls, bytes
}

// runtimeWake is the size of the write the Go runtime makes to wake its
// network poller (netpollBreak: eight bytes to an eventfd). It can land on
// any thread, the test's locked one included, in the middle of a commit.
const runtimeWake = 8

// TestWALCommitOneWrite: through the store's VFS a commit appends all its
// WAL frames (24-byte header and page each) in one write system call —
// SQLite's unix VFS makes two per frame — a commit larger than
// walGatherMax in writes of about that size, and the file it leaves is an
// ordinary WAL database: the plain unix VFS reads every row back after
// the writer is gone, and the integrity check passes.
func TestWALCommitOneWrite(t *testing.T) {
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
	for commit := range 22 {
		// The connection's goroutine stays on this thread, so the
		// thread's write count is the commit's.
		runtime.LockOSThread()
		calls0, bytes0 := threadWrites(t)
		size := walSize()
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		// A few pages of table and index per commit; the last two
		// commits write about 2 MiB each.
		n, width := 3+commit%5*20, 40
		if commit >= 20 {
			n, width = 3000, 200
		}
		for range n {
			rows++
			if _, err := tx.ExecContext(ctx, `INSERT INTO t (v) VALUES (?)`, strings.Repeat(strconv.Itoa(rows), width)); err != nil {
				t.Fatalf("commit %d, row %d: %v", commit, rows, err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		calls1, bytes1 := threadWrites(t)
		grown := walSize() - size
		runtime.UnlockOSThread()
		frames := grown / frame
		if frames < 2 {
			t.Fatalf("commit %d appended %d frames; the test needs more", commit, frames)
		}
		// The commit's frames in one write: one write, of the frames'
		// bytes. Any write beyond it must be the runtime's poller
		// wake-up (its eight bytes), never a part of the frames — a
		// frame written apart from the others adds a write and no bytes.
		writes, written := calls1-calls0, bytes1-bytes0
		if commit >= 20 {
			// A commit larger than the page cache also writes frames
			// before it ends (spills) and rewrites frames of pages it
			// changes again, at their earlier place in the file: never
			// more writes than frames.
			if writes > frames || written < grown {
				t.Fatalf("commit %d: %d write system calls of %d bytes for %d WAL frames (%d bytes), want at most one a frame",
					commit, writes, written, frames, grown)
			}
			continue
		}
		// Every write beyond the commit's must bring bytes of its own:
		// the runtime's 8-byte wake-up, or (seen once, in a CI run under
		// load with the race detector) one 4,096-byte write on this
		// thread that no commit here makes. A commit split in two adds a
		// write and no bytes.
		extra := writes - 1
		if extra < 0 || written-grown < extra*runtimeWake {
			t.Fatalf("commit %d: %d write system calls of %d bytes for %d WAL frames (%d bytes), want 1 (beside the runtime's %d-byte wake-ups)",
				commit, writes, written, frames, grown, runtimeWake)
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
