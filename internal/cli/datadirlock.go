package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A SQLite database is served by one process: the store and the engine
// keep state in memory that assumes they are alone on the file (the
// writer's caches, the engine's hand-off of new deliveries, lease spans,
// leadership, rate limits, the publish lanes), so a second serve on the
// same file would risk duplicate or stuck deliveries and drifting counts.
// serve (and `migrate up`, which changes the schema under a running
// serve) hold an exclusive advisory lock on a file beside the database
// for their whole life; the kernel releases it on any exit, kill -9
// included, so a lock is never stale. The file's content (who holds it)
// is only for the refusal's message: the decision is the lock's alone.
// docs/design.md, "One serve per SQLite database".

// dbLock is a held lock on a SQLite database's lock file.
type dbLock struct {
	f       *os.File
	path    string
	created bool // the file did not exist before this lock
}

// dbLockPath is the lock file of the SQLite database at dbPath. Not one of
// SQLite's own names (-wal, -shm, -journal), which its tools create and
// delete.
func dbLockPath(dbPath string) string { return dbPath + ".lock" }

// lockDatabase takes the lock of the SQLite database at dbPath for
// command (what the file names as its holder, e.g. "serve"), or refuses
// with errDatabaseInUse, ending with hint, while another process holds it.
// The database's directory has to exist.
func lockDatabase(dbPath, command, hint string) (*dbLock, error) {
	l, busy, err := lockFile(dbLockPath(dbPath), command)
	if busy != nil {
		return nil, errDatabaseInUse(dbPath, *busy, hint)
	}
	return l, err
}

// lockFile takes the exclusive lock of the file at path for command,
// creating the file if needed; while another process holds it, it returns
// that process (busy) instead.
func lockFile(path, command string) (l *dbLock, busy *holder, err error) {
	for {
		f, created, err := openLockFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("lock %s: %w", path, err)
		}
		ok, err := tryLockFile(f)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !ok {
			h := readHolder(f)
			f.Close()
			return nil, &h, nil
		}
		// A refused start removes the file it made while it holds the
		// lock (release): one that opened that file before is then
		// locking a name nobody finds, so it starts over.
		if st, err := os.Stat(path); err != nil || !sameFile(f, st) {
			f.Close()
			continue
		}
		l := &dbLock{f: f, path: path, created: created}
		l.writeHolder(command)
		return l, nil, nil
	}
}

// openLockFile opens path, creating it if needed; created tells which.
func openLockFile(path string) (f *os.File, created bool, err error) {
	for {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			return f, true, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, false, err
		}
		f, err = os.OpenFile(path, os.O_RDWR, 0)
		if !errors.Is(err, os.ErrNotExist) { // else removed in between: again
			return f, false, err
		}
	}
}

func sameFile(f *os.File, st os.FileInfo) bool {
	fst, err := f.Stat()
	return err == nil && os.SameFile(fst, st)
}

// writeHolder records this process as the holder, for the message of
// whoever is refused. Best effort: the lock is held either way.
func (l *dbLock) writeHolder(command string) {
	host, _ := os.Hostname()
	content := fmt.Sprintf("command=%s\npid=%d\nhost=%s\nsince=%s\n",
		command, os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	if err := l.f.Truncate(0); err == nil {
		_, _ = l.f.WriteAt([]byte(content), 0)
	}
}

// release gives the lock up. remove also deletes the file when this lock
// made it (a refused start leaves the disk as it was), where the platform
// allows that while the lock is held (removeLocked).
func (l *dbLock) release(remove bool) {
	if l == nil {
		return
	}
	if remove && l.created && removeLocked {
		_ = os.Remove(l.path)
	}
	_ = l.f.Close() // closing releases the lock
}

// holder is what a lock file says about the process holding it.
type holder struct{ command, pid, host, since string }

// readHolder reads the holder a lock file names; fields it cannot read
// stay empty (the holder may be writing it at this moment).
func readHolder(f *os.File) holder {
	b, _ := io.ReadAll(io.NewSectionReader(f, 0, 512))
	var h holder
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		v = printable(v)
		switch k {
		case "command":
			h.command = v
		case "pid":
			if _, err := strconv.Atoi(v); err == nil {
				h.pid = v
			}
		case "host":
			h.host = v
		case "since":
			h.since = v
		}
	}
	return h
}

// printable is s without control characters, at most 64 bytes: the file
// could hold anything, and its content ends up on a terminal.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

func (h holder) String() string {
	who := "another longhook process"
	if h.command != "" {
		who = "another longhook " + h.command
	}
	if h.pid == "" {
		return who
	}
	who += " (pid " + h.pid
	if h.host != "" {
		who += " on host " + h.host
	}
	if h.since != "" {
		who += ", since " + h.since
	}
	return who + ")"
}

// Hints of errDatabaseInUse.
const (
	hintServe   = "one process serves a SQLite database — stop it first, or use PostgreSQL to run several instances"
	hintMigrate = "stop it first: migrations change the schema under a running serve"
)

// errDatabaseInUse is the refusal to use the SQLite database at dbPath
// that h holds. An exit 1, like an address in use.
func errDatabaseInUse(dbPath string, h holder, hint string) error {
	if abs, err := filepath.Abs(dbPath); err == nil {
		dbPath = abs
	}
	return fmt.Errorf("the database %s is in use by %s; %s", dbPath, h, hint)
}
