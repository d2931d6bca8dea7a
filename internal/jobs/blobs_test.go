package jobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/store/sqlite"
	"github.com/longhook/longhook/internal/store/storetest"
)

// blobsEnv is one implementation of blobs under test, with a way to leave
// what a crashed writer leaves behind.
type blobsEnv struct {
	b     blobs
	store core.JobStore
	// leftover simulates a writer that crashed at at, and returns whether
	// its bytes are gone.
	leftover func(t *testing.T, at time.Time) (gone func() bool)
}

// blobsImpls returns the implementations: on disk with SQLite, and in
// PostgreSQL when LONGHOOK_TEST_POSTGRES_URL is set.
func blobsImpls(t *testing.T) map[string]func(t *testing.T) *blobsEnv {
	return map[string]func(t *testing.T) *blobsEnv{
		"disk": func(t *testing.T) *blobsEnv {
			dir := t.TempDir()
			st, err := sqlite.Open(context.Background(), filepath.Join(dir, "longhook.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			svc, err := New(Config{Store: st, Publisher: NopPublisher{}, Dir: filepath.Join(dir, "jobs")})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := svc.blobs.(*diskBlobs); !ok {
				t.Fatalf("a SQLite store got %T", svc.blobs)
			}
			return &blobsEnv{b: svc.blobs, store: st, leftover: func(t *testing.T, at time.Time) func() bool {
				path := filepath.Join(dir, "jobs", "files", tempPrefix+"crashed-"+core.NewID()[:8])
				if err := os.WriteFile(path, []byte("half"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(path, at, at); err != nil {
					t.Fatal(err)
				}
				return func() bool { _, err := os.Stat(path); return errors.Is(err, os.ErrNotExist) }
			}}
		},
		"postgres": func(t *testing.T) *blobsEnv {
			st := NewPGStore(t, PGSchema(t))
			svc, err := New(Config{Store: st, Publisher: NopPublisher{}, Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := svc.blobs.(*storeBlobs); !ok {
				t.Fatalf("a PostgreSQL store got %T", svc.blobs)
			}
			return &blobsEnv{b: svc.blobs, store: st, leftover: func(t *testing.T, at time.Time) func() bool {
				blob, _, err := st.WriteBlob(context.Background(), bytes.NewReader([]byte("half")), at)
				if err != nil {
					t.Fatal(err)
				}
				return func() bool {
					_, _, err := st.ReadBlob(context.Background(), blob, 0, nil)
					return errors.Is(err, core.ErrNotFound)
				}
			}}
		},
	}
}

// TestBlobs holds both implementations of blobs to one contract.
func TestBlobs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fn   func(t *testing.T, e *blobsEnv)
	}{
		{"FileRoundTrip", testBlobsFile},
		{"FailedWriteLeavesNothing", testBlobsFailedWrite},
		{"Replace", testBlobsReplace},
		{"Upload", testBlobsUpload},
		{"Sweep", testBlobsSweep},
	}
	for name, impl := range blobsImpls(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if name == "postgres" {
				pgtest.URL(t)
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.fn(t, impl(t))
				})
			}
		})
	}
}

// newTestFile is a file of a fresh project to create.
func newTestFile() *core.File {
	return storetest.NewFile(core.NewID(), time.Now().UTC().Truncate(time.Microsecond))
}

// readFile opens a file and reads it whole, checking its size.
func readFile(t *testing.T, b blobs, f *core.File) []byte {
	t.Helper()
	c, err := b.Open(context.Background(), f.ProjectID, f.ID)
	if err != nil {
		t.Fatalf("Open(%s): %v", f.ID, err)
	}
	defer c.Close()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read %s: %v", f.ID, err)
	}
	if c.Size() != int64(len(got)) {
		t.Errorf("Size() = %d, read %d bytes", c.Size(), len(got))
	}
	return got
}

func testBlobsFile(t *testing.T, e *blobsEnv) {
	ctx := context.Background()
	data := RandomBytes(2<<20+12345, 1)
	f := newTestFile()
	if err := e.b.CreateFile(ctx, f, bytes.NewReader(data), false); err != nil {
		t.Fatalf("CreateFile: %v", err)
	}
	sum := sha256.Sum256(data)
	if f.SizeBytes != int64(len(data)) || !bytes.Equal(f.SHA256, sum[:]) {
		t.Errorf("CreateFile set size %d, sha256 %x; want %d, %x", f.SizeBytes, f.SHA256, len(data), sum)
	}
	if got, err := e.store.GetFile(ctx, f.ProjectID, f.ID); err != nil || got.SizeBytes != f.SizeBytes {
		t.Fatalf("GetFile = %+v, %v", got, err)
	}
	if !bytes.Equal(readFile(t, e.b, f), data) {
		t.Fatal("contents differ")
	}

	// Seeking, as a Range request does.
	c, err := e.b.Open(ctx, f.ProjectID, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, off := range []int64{1 << 20, 17, int64(len(data)) - 3} {
		if _, err := c.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10)
		n, err := io.ReadFull(c, buf)
		if want := min(10, len(data)-int(off)); n != want || !bytes.Equal(buf[:n], data[off:off+int64(n)]) || (n < 10) != errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("read at %d: %d bytes, %v", off, n, err)
		}
	}
	if end, err := c.Seek(0, io.SeekEnd); err != nil || end != int64(len(data)) {
		t.Errorf("Seek(0, SeekEnd) = %d, %v", end, err)
	}

	_, err = e.b.Open(ctx, core.NewID(), f.ID)
	if !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Open(other project) = %v, want ErrNotFound", err)
	}
	if err := e.b.CreateFile(ctx, &core.File{ID: f.ID, ProjectID: f.ProjectID}, bytes.NewReader(nil), false); !errors.Is(err, core.ErrAlreadyExists) {
		t.Errorf("CreateFile(taken id) = %v, want ErrAlreadyExists", err)
	}
	if !bytes.Equal(readFile(t, e.b, f), data) {
		t.Fatal("contents changed by a refused CreateFile")
	}
	if err := e.b.DeleteFile(ctx, f.ProjectID, f.ID); err != nil {
		t.Fatalf("DeleteFile: %v", err)
	}
	if _, err := e.b.Open(ctx, f.ProjectID, f.ID); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Open after DeleteFile = %v, want ErrNotFound", err)
	}
}

// testBlobsFailedWrite: a body that fails mid-way (a client gone, a file
// over the limit) creates nothing.
func testBlobsFailedWrite(t *testing.T, e *blobsEnv) {
	ctx := context.Background()
	f := newTestFile()
	r := &capReader{r: bytes.NewReader(RandomBytes(3<<20, 2)), left: 1<<20 + 5, err: errFileTooLarge}
	if err := e.b.CreateFile(ctx, f, r, false); !errors.Is(err, errFileTooLarge) {
		t.Fatalf("CreateFile(too large) = %v, want errFileTooLarge", err)
	}
	if _, err := e.store.GetFile(ctx, "", f.ID); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("GetFile after a failed write = %v, want ErrNotFound", err)
	}
	if _, err := e.b.Open(ctx, "", f.ID); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Open after a failed write = %v, want ErrNotFound", err)
	}
}

// testBlobsReplace: a resumed job rewrites its output file.
func testBlobsReplace(t *testing.T, e *blobsEnv) {
	ctx := context.Background()
	f := newTestFile()
	if err := e.b.CreateFile(ctx, f, bytes.NewReader([]byte("first run")), true); err != nil {
		t.Fatal(err)
	}
	g := *f
	if err := e.b.CreateFile(ctx, &g, bytes.NewReader([]byte("second run, longer")), true); err != nil {
		t.Fatalf("CreateFile(replace): %v", err)
	}
	if got := readFile(t, e.b, f); string(got) != "second run, longer" {
		t.Errorf("replaced contents = %q", got)
	}
}

func testBlobsUpload(t *testing.T, e *blobsEnv) {
	ctx := context.Background()
	f := newTestFile()
	u := &core.Upload{ID: core.NewID(), ProjectID: f.ProjectID, File: *f, Size: -1, CreateTime: f.CreateTime, UpdateTime: f.CreateTime}
	if err := e.b.StartUpload(ctx, u); err != nil {
		t.Fatalf("StartUpload: %v", err)
	}
	var all []byte
	appendPart := func(part []byte) {
		t.Helper()
		n, err := e.b.AppendUpload(ctx, u, bytes.NewReader(part))
		if err != nil || n != int64(len(part)) {
			t.Fatalf("AppendUpload(%d bytes at %d) = %d, %v", len(part), u.Received, n, err)
		}
		u.Received += n
		all = append(all, part...)
	}
	appendPart(RandomBytes(1<<20+7, 3))
	// A chunk that fails mid-way appends nothing; the client resumes at
	// the same offset.
	bad := &capReader{r: bytes.NewReader(RandomBytes(2<<20, 4)), left: 1 << 20, err: errBeyondDeclared}
	if _, err := e.b.AppendUpload(ctx, u, bad); !errors.Is(err, errBeyondDeclared) {
		t.Fatalf("AppendUpload(failing body) = %v", err)
	}
	if got, _ := e.store.GetUpload(ctx, u.ID); got.Received != u.Received {
		t.Fatalf("Received after a failed chunk = %d, want %d", got.Received, u.Received)
	}
	appendPart([]byte("tail"))
	// A chunk at a stale offset (another instance got there first).
	stale := *u
	stale.Received = 5
	if _, err := e.b.AppendUpload(ctx, &stale, bytes.NewReader([]byte("late"))); !errors.Is(err, core.ErrFailedPrecondition) {
		t.Errorf("AppendUpload(stale offset) = %v, want ErrFailedPrecondition", err)
	}
	appendPart(RandomBytes(300, 5))

	out := u.File
	if err := e.b.FinishUpload(ctx, u, &out); err != nil {
		t.Fatalf("FinishUpload: %v", err)
	}
	sum := sha256.Sum256(all)
	if out.SizeBytes != int64(len(all)) || !bytes.Equal(out.SHA256, sum[:]) {
		t.Errorf("FinishUpload set size %d, sha256 %x; want %d, %x", out.SizeBytes, out.SHA256, len(all), sum)
	}
	if !bytes.Equal(readFile(t, e.b, &out), all) {
		t.Fatal("uploaded contents differ")
	}
	if _, err := e.store.GetUpload(ctx, u.ID); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("GetUpload after FinishUpload = %v, want ErrNotFound", err)
	}

	// A cancelled session is gone.
	v := &core.Upload{ID: core.NewID(), ProjectID: f.ProjectID, File: *newTestFile(), Size: -1}
	if err := e.b.StartUpload(ctx, v); err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.AppendUpload(ctx, v, bytes.NewReader([]byte("abc"))); err != nil {
		t.Fatal(err)
	}
	if err := e.b.DeleteUpload(ctx, v.ID); err != nil {
		t.Fatalf("DeleteUpload: %v", err)
	}
	if _, err := e.store.GetUpload(ctx, v.ID); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("GetUpload after DeleteUpload = %v, want ErrNotFound", err)
	}
}

// testBlobsSweep: a crashed writer's bytes are deleted once stale, not
// before.
func testBlobsSweep(t *testing.T, e *blobsEnv) {
	now := time.Now()
	old := e.leftover(t, now.Add(-3*time.Hour))
	recent := e.leftover(t, now.Add(-time.Minute))
	f := newTestFile()
	if err := e.b.CreateFile(context.Background(), f, bytes.NewReader([]byte("kept")), false); err != nil {
		t.Fatal(err)
	}
	if err := e.b.Sweep(context.Background(), now.Add(-stagedTTL)); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if !old() {
		t.Error("a stale leftover survived the sweep")
	}
	if recent() {
		t.Error("the sweep deleted a write that may still be in progress")
	}
	if got := readFile(t, e.b, f); string(got) != "kept" {
		t.Errorf("file after the sweep: %q", got)
	}
}

// TestSweepTemp: a process clears what a crash left in Dir/tmp when it
// starts, but not a render that may still be going on elsewhere.
func TestSweepTemp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "longhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cfg := Config{Store: st, Publisher: NopPublisher{}, Dir: filepath.Join(dir, "jobs")}
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
	old, recent := filepath.Join(cfg.Dir, "tmp", "old"), filepath.Join(cfg.Dir, "tmp", "recent")
	for path, age := range map[string]time.Duration{old: 49 * time.Hour, recent: 47 * time.Hour} {
		if err := os.WriteFile(path, []byte("video"), 0o600); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(path, at, at); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a leftover older than FileTTL survived a start: %v", err)
	}
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("a start removed a recent temporary file: %v", err)
	}
}
