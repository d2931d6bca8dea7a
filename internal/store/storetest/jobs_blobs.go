package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// BlobJobStore is a JobStore that keeps the contents of files
// (core.BlobStore).
type BlobJobStore interface {
	core.JobStore
	core.BlobStore
}

// blobChunkHint is a size past one chunk of every driver (PostgreSQL
// stores 1 MiB rows), so that the suite crosses row boundaries.
const blobChunkHint = 1 << 20

// maxReadChunk bounds what one ReadBlob may return ("at most a few MiB"):
// a reader's memory does not grow with the file.
const maxReadChunk = 4 << 20

// RunBlobs runs the conformance suite of core.BlobStore. newStore must
// return a fresh, empty store for each call and release it when t ends.
// Subtests run in parallel.
func RunBlobs(t *testing.T, newStore func(t *testing.T) BlobJobStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *blobEnv)
	}{
		{"RoundTrip", testBlobRoundTrip},
		{"ReadAnyOffset", testBlobReadAnyOffset},
		{"StagedIsNotAFile", testBlobStaged},
		{"WriteError", testBlobWriteError},
		{"CreateFileDuplicate", testBlobCreateDuplicate},
		{"FileNamesPerProject", testBlobNamesPerProject},
		{"ReplaceFile", testBlobReplace},
		{"DeleteFile", testBlobDeleteFile},
		{"FileBlobIsolation", testBlobIsolation},
		{"Upload", testBlobUpload},
		{"UploadWrongOffset", testBlobUploadWrongOffset},
		{"UploadConcurrent", testBlobUploadConcurrent},
		{"FinishUploadRefused", testBlobFinishRefused},
		{"DeleteUpload", testBlobDeleteUpload},
		{"DeleteStaleBlobs", testDeleteStaleBlobs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, &blobEnv{t: t, ctx: context.Background(), b: newStore(t), p: core.NewID(), q: core.NewID()})
		})
	}
}

// blobEnv is one subtest's fixture: a fresh store and two project ids.
type blobEnv struct {
	t    *testing.T
	ctx  context.Context
	b    BlobJobStore
	p, q string
}

// bytesOf returns n deterministic pseudo-random bytes.
func bytesOf(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(r.Uint32())
	}
	return out
}

// stage writes data as a staged blob at now.
func (e *blobEnv) stage(data []byte, now time.Time) string {
	e.t.Helper()
	blob, n, err := e.b.WriteBlob(e.ctx, bytes.NewReader(data), now)
	if err != nil {
		e.t.Fatalf("WriteBlob(%d bytes): %v", len(data), err)
	}
	if n != int64(len(data)) {
		e.t.Fatalf("WriteBlob(%d bytes) wrote %d", len(data), n)
	}
	return blob
}

// newFile creates a file of project p (or projectID) holding data.
func (e *blobEnv) newFile(projectID string, data []byte) *core.File {
	e.t.Helper()
	if projectID == "" {
		projectID = e.p
	}
	f := NewFile(projectID, T0)
	f.SizeBytes = int64(len(data))
	if err := e.b.CreateFileWithBlob(e.ctx, f, e.stage(data, T0), false); err != nil {
		e.t.Fatalf("CreateFileWithBlob: %v", err)
	}
	return f
}

// readAll reads size bytes of blob from the start, chunk by chunk, as a
// download does.
func (e *blobEnv) readAll(blob string, size int64) ([]byte, error) {
	var out []byte
	var buf []byte
	for off := int64(0); off < size; {
		start, data, err := e.b.ReadBlob(e.ctx, blob, off, buf)
		if err != nil {
			return out, fmt.Errorf("ReadBlob at %d: %w", off, err)
		}
		if start > off || off >= start+int64(len(data)) {
			return out, fmt.Errorf("ReadBlob at %d returned [%d, %d)", off, start, start+int64(len(data)))
		}
		if len(data) > maxReadChunk {
			return out, fmt.Errorf("ReadBlob returned %d bytes at once", len(data))
		}
		out = append(out, data[off-start:]...)
		off = start + int64(len(data))
		buf = data
	}
	return out, nil
}

// contents reads file id's contents through FileBlob and ReadBlob.
func (e *blobEnv) contents(projectID, id string) []byte {
	e.t.Helper()
	blob, size, err := e.b.FileBlob(e.ctx, projectID, id)
	if err != nil {
		e.t.Fatalf("FileBlob(%s): %v", id, err)
	}
	got, err := e.readAll(blob, size)
	if err != nil {
		e.t.Fatalf("file %s: %v", id, err)
	}
	return got
}

func wantBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Errorf("%s: %d bytes, want %d; first difference at byte %d", what, len(got), len(want), i)
	}
}

// wantGone asserts that blob holds nothing at off.
func (e *blobEnv) wantGone(what, blob string) {
	e.t.Helper()
	_, _, err := e.b.ReadBlob(e.ctx, blob, 0, nil)
	wantNotFound(e.t, what, err)
}

func testBlobRoundTrip(t *testing.T, e *blobEnv) {
	for i, n := range []int{1, 17, blobChunkHint - 1, blobChunkHint, blobChunkHint + 1, 2*blobChunkHint + blobChunkHint/2} {
		data := bytesOf(n, uint64(i))
		f := e.newFile("", data)
		wantEqual(t, "GetFile", e.getFileOf(f.ID), f)
		wantBytes(t, fmt.Sprintf("contents of %d bytes", n), e.contents(e.p, f.ID), data)
	}
	// An empty file has a blob without bytes.
	f := e.newFile("", nil)
	blob, size, err := e.b.FileBlob(e.ctx, "", f.ID)
	if err != nil || blob == "" || size != 0 {
		t.Errorf("FileBlob(empty file) = %q, %d, %v", blob, size, err)
	}
	e.wantGone("ReadBlob(empty file)", blob)
}

// getFileOf reads a file through the blob store's JobStore.
func (e *blobEnv) getFileOf(id string) *core.File {
	e.t.Helper()
	f, err := e.b.GetFile(e.ctx, "", id)
	if err != nil {
		e.t.Fatalf("GetFile(%s): %v", id, err)
	}
	return f
}

func testBlobReadAnyOffset(t *testing.T, e *blobEnv) {
	data := bytesOf(2*blobChunkHint+100, 1)
	f := e.newFile("", data)
	blob, size, err := e.b.FileBlob(e.ctx, e.p, f.ID)
	if err != nil || size != int64(len(data)) {
		t.Fatalf("FileBlob = %d, %v", size, err)
	}
	for _, off := range []int64{0, 1, blobChunkHint - 1, blobChunkHint, blobChunkHint + 7, size - 1} {
		start, chunk, err := e.b.ReadBlob(e.ctx, blob, off, make([]byte, 0, 16))
		if err != nil {
			t.Fatalf("ReadBlob(%d): %v", off, err)
		}
		if start > off || off >= start+int64(len(chunk)) || !bytes.Equal(chunk, data[start:start+int64(len(chunk))]) {
			t.Errorf("ReadBlob(%d) = [%d, %d) not matching the data", off, start, start+int64(len(chunk)))
		}
	}
	for _, off := range []int64{size, size + blobChunkHint} {
		_, _, err := e.b.ReadBlob(e.ctx, blob, off, nil)
		wantNotFound(t, fmt.Sprintf("ReadBlob(past the end, %d)", off), err)
	}
	e.wantGone("ReadBlob(unknown blob)", "no-such-blob")
}

// testBlobStaged: a staged blob is readable by its id but no file, and
// DeleteBlob removes it.
func testBlobStaged(t *testing.T, e *blobEnv) {
	data := bytesOf(blobChunkHint+5, 2)
	blob := e.stage(data, T0)
	got, err := e.readAll(blob, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "staged blob", got, data)
	fs, err := e.b.ListFiles(e.ctx, e.p, "", 10)
	if err != nil || len(fs) != 0 {
		t.Errorf("ListFiles after WriteBlob = %v, %v; want nothing", fileIDs(fs), err)
	}
	if err := e.b.DeleteBlob(e.ctx, blob); err != nil {
		t.Fatalf("DeleteBlob: %v", err)
	}
	e.wantGone("ReadBlob after DeleteBlob", blob)
	if err := e.b.DeleteBlob(e.ctx, blob); err != nil {
		t.Errorf("DeleteBlob again: %v", err)
	}
}

// failingReader yields n bytes, then err.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// testBlobWriteError: a reader failing after a chunk (a client that went
// away, a body over its limit) fails WriteBlob with its error, and nothing
// stays behind.
func testBlobWriteError(t *testing.T, e *blobEnv) {
	boom := errors.New("boom")
	_, _, err := e.b.WriteBlob(e.ctx, &failingReader{bytes.NewReader(bytesOf(blobChunkHint+10, 3)), boom}, T0)
	if !errors.Is(err, boom) {
		t.Fatalf("WriteBlob(failing reader) = %v, want the reader's error", err)
	}
	n, err := e.b.DeleteStaleBlobs(e.ctx, T0.Add(time.Hour), 100)
	if err != nil || n != 0 {
		t.Errorf("DeleteStaleBlobs after a failed write = %d, %v; want nothing left", n, err)
	}
}

func testBlobCreateDuplicate(t *testing.T, e *blobEnv) {
	orig := bytesOf(100, 4)
	f := e.newFile("", orig)
	other := bytesOf(200, 5)
	blob := e.stage(other, T0)
	dup := NewFile(e.p, T0)
	dup.ID, dup.SizeBytes = f.ID, int64(len(other))
	if err := e.b.CreateFileWithBlob(e.ctx, dup, blob, false); !errors.Is(err, core.ErrAlreadyExists) {
		t.Errorf("CreateFileWithBlob(duplicate) = %v, want ErrAlreadyExists", err)
	}
	wantEqual(t, "original file", e.getFileOf(f.ID), f)
	wantBytes(t, "original contents", e.contents(e.p, f.ID), orig)
	got, err := e.readAll(blob, int64(len(other)))
	if err != nil {
		t.Fatalf("the refused blob is no longer staged: %v", err)
	}
	wantBytes(t, "refused blob", got, other)
}

// testBlobNamesPerProject: another project creates (or replaces) a file of
// the same id with its own contents, and deletes it, without touching the
// first project's file (issue 13, defect 8).
func testBlobNamesPerProject(t *testing.T, e *blobEnv) {
	orig := bytesOf(100, 4)
	f := e.newFile("", orig)
	for i, replace := range []bool{false, true} {
		data := bytesOf(200+i, uint64(5+i))
		theirs := NewFile(e.q, T0)
		theirs.ID, theirs.SizeBytes = f.ID, int64(len(data))
		if err := e.b.CreateFileWithBlob(e.ctx, theirs, e.stage(data, T0), replace); err != nil {
			t.Fatalf("CreateFileWithBlob(same id, other project, replace %v) = %v, want success", replace, err)
		}
		wantBytes(t, "the other project's contents", e.contents(e.q, f.ID), data)
		wantBytes(t, "own contents", e.contents(e.p, f.ID), orig)
	}
	if err := e.b.DeleteFile(e.ctx, e.q, f.ID); err != nil {
		t.Fatalf("DeleteFile(other project): %v", err)
	}
	_, _, err := e.b.FileBlob(e.ctx, e.q, f.ID)
	wantNotFound(t, "FileBlob(deleted, other project)", err)
	wantBytes(t, "own contents after the other project's delete", e.contents(e.p, f.ID), orig)
}

// testBlobReplace: replacing a file gives it new contents under a new blob
// id, so a reader of the old version finds it gone instead of mixing the
// two.
func testBlobReplace(t *testing.T, e *blobEnv) {
	oldData := bytesOf(blobChunkHint+1, 6)
	f := e.newFile("", oldData)
	oldBlob, _, err := e.b.FileBlob(e.ctx, e.p, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	newData := bytesOf(blobChunkHint+1, 7)
	g := NewFile(e.p, T0.Add(time.Minute))
	g.ID, g.SizeBytes, g.Source = f.ID, int64(len(newData)), "GENERATED"
	if err := e.b.CreateFileWithBlob(e.ctx, g, e.stage(newData, T0), true); err != nil {
		t.Fatalf("CreateFileWithBlob(replace): %v", err)
	}
	wantEqual(t, "replaced file", e.getFileOf(f.ID), g)
	wantBytes(t, "replaced contents", e.contents(e.p, f.ID), newData)
	newBlob, _, _ := e.b.FileBlob(e.ctx, e.p, f.ID)
	if newBlob == oldBlob {
		t.Errorf("the replaced file kept its blob id %q", oldBlob)
	}
	e.wantGone("ReadBlob(old version)", oldBlob)

	// Replacing a file that does not exist creates it.
	h := NewFile(e.p, T0.Add(2*time.Minute))
	h.SizeBytes = 3
	if err := e.b.CreateFileWithBlob(e.ctx, h, e.stage([]byte("abc"), T0), true); err != nil {
		t.Fatalf("CreateFileWithBlob(replace, new id): %v", err)
	}
	wantBytes(t, "new file", e.contents("", h.ID), []byte("abc"))
}

func testBlobDeleteFile(t *testing.T, e *blobEnv) {
	f := e.newFile("", bytesOf(blobChunkHint+3, 8))
	keep := bytesOf(10, 9)
	other := e.newFile("", keep)
	blob, _, _ := e.b.FileBlob(e.ctx, e.p, f.ID)
	if err := e.b.DeleteFile(e.ctx, e.p, f.ID); err != nil {
		t.Fatalf("DeleteFile: %v", err)
	}
	_, _, err := e.b.FileBlob(e.ctx, "", f.ID)
	wantNotFound(t, "FileBlob after DeleteFile", err)
	e.wantGone("contents after DeleteFile", blob)
	wantBytes(t, "other file", e.contents("", other.ID), keep)
	// Any project, as the expiry sweep deletes.
	if err := e.b.DeleteFile(e.ctx, "", other.ID); err != nil {
		t.Fatalf("DeleteFile(any project): %v", err)
	}
	_, _, err = e.b.FileBlob(e.ctx, "", other.ID)
	wantNotFound(t, "FileBlob after DeleteFile(any project)", err)
}

func testBlobIsolation(t *testing.T, e *blobEnv) {
	f := e.newFile("", []byte("mine"))
	_, _, err := e.b.FileBlob(e.ctx, e.q, f.ID)
	wantNotFound(t, "FileBlob(other project)", err)
	_, _, err = e.b.FileBlob(e.ctx, e.p, "missing")
	wantNotFound(t, "FileBlob(missing)", err)
	wantBytes(t, "FileBlob(any project)", e.contents("", f.ID), []byte("mine"))

	// A file created without contents (CreateFile) has no blob.
	bare := NewFile(e.p, T0)
	if err := e.b.CreateFile(e.ctx, bare); err != nil {
		t.Fatal(err)
	}
	if blob, _, err := e.b.FileBlob(e.ctx, e.p, bare.ID); err != nil || blob != "" {
		t.Errorf("FileBlob(file without contents) = %q, %v; want no blob", blob, err)
	}
	if err := e.b.DeleteFile(e.ctx, e.p, bare.ID); err != nil {
		t.Errorf("DeleteFile(file without contents): %v", err)
	}
}

// newUpload creates an upload session of project p.
func (e *blobEnv) newUpload(size int64) *core.Upload {
	e.t.Helper()
	f := NewFile(e.p, T0)
	u := &core.Upload{ID: core.NewID(), ProjectID: e.p, Size: size, CreateTime: T0, UpdateTime: T0,
		File: core.File{ID: f.ID, ProjectID: e.p, MIMEType: "video/mp4", Source: "UPLOADED", ExpireTime: f.ExpireTime}}
	if err := e.b.CreateUpload(e.ctx, u); err != nil {
		e.t.Fatalf("CreateUpload: %v", err)
	}
	return u
}

// uploadFile is the file finishing u creates with size bytes.
func uploadFile(u *core.Upload, size int64) *core.File {
	f := u.File
	f.SizeBytes, f.CreateTime, f.UpdateTime = size, u.CreateTime, T0.Add(time.Hour)
	f.SHA256 = bytes.Repeat([]byte{1}, 32)
	return &f
}

// testBlobUpload: chunks of any size, at any offset, make one file.
func testBlobUpload(t *testing.T, e *blobEnv) {
	parts := [][]byte{bytesOf(5, 10), bytesOf(blobChunkHint+3, 11), bytesOf(7, 12), {}, bytesOf(blobChunkHint, 13)}
	var all []byte
	u := e.newUpload(-1)
	if d, err := e.b.UploadDigest(e.ctx, u.ID); err != nil || len(d) != 0 {
		t.Errorf("UploadDigest of a new session = %x, %v; want empty", d, err)
	}
	for i, p := range parts {
		from := int64(len(all))
		digest := []byte(fmt.Sprintf("state-%d", i))
		at := T0.Add(time.Duration(i+1) * time.Second)
		err := e.b.AppendUploadBlob(e.ctx, core.AppendUploadParams{ID: u.ID, Blob: e.stage(p, at), From: from,
			To: from + int64(len(p)), Digest: digest, Now: at})
		if err != nil {
			t.Fatalf("AppendUploadBlob(part %d): %v", i, err)
		}
		all = append(all, p...)
		got := e.getUploadOf(u.ID)
		if got.Received != int64(len(all)) || !got.UpdateTime.Equal(at) {
			t.Errorf("after part %d: Received %d, UpdateTime %v; want %d, %v", i, got.Received, got.UpdateTime, len(all), at)
		}
		if d, err := e.b.UploadDigest(e.ctx, u.ID); err != nil || !bytes.Equal(d, digest) {
			t.Errorf("UploadDigest after part %d = %q, %v; want %q", i, d, err, digest)
		}
	}
	f := uploadFile(u, int64(len(all)))
	if err := e.b.FinishUpload(e.ctx, u.ID, f); err != nil {
		t.Fatalf("FinishUpload: %v", err)
	}
	wantEqual(t, "finished file", e.getFileOf(f.ID), f)
	wantBytes(t, "finished contents", e.contents(e.p, f.ID), all)
	_, err := e.b.GetUpload(e.ctx, u.ID)
	wantNotFound(t, "GetUpload after FinishUpload", err)
	wantNotFound(t, "FinishUpload again", e.b.FinishUpload(e.ctx, u.ID, f))

	// An empty upload makes an empty file.
	empty := e.newUpload(0)
	ef := uploadFile(empty, 0)
	if err := e.b.FinishUpload(e.ctx, empty.ID, ef); err != nil {
		t.Fatalf("FinishUpload(empty): %v", err)
	}
	if got := e.contents("", ef.ID); len(got) != 0 {
		t.Errorf("empty upload holds %d bytes", len(got))
	}
}

func (e *blobEnv) getUploadOf(id string) *core.Upload {
	e.t.Helper()
	u, err := e.b.GetUpload(e.ctx, id)
	if err != nil {
		e.t.Fatalf("GetUpload(%s): %v", id, err)
	}
	return u
}

func testBlobUploadWrongOffset(t *testing.T, e *blobEnv) {
	u := e.newUpload(-1)
	first := bytesOf(10, 14)
	if err := e.b.AppendUploadBlob(e.ctx, core.AppendUploadParams{ID: u.ID, Blob: e.stage(first, T0), From: 0, To: 10, Now: T0}); err != nil {
		t.Fatal(err)
	}
	for _, from := range []int64{0, 9, 11} {
		blob := e.stage([]byte("xyz"), T0)
		err := e.b.AppendUploadBlob(e.ctx, core.AppendUploadParams{ID: u.ID, Blob: blob, From: from, To: from + 3, Now: T0.Add(time.Minute)})
		if !errors.Is(err, core.ErrFailedPrecondition) {
			t.Errorf("AppendUploadBlob(from %d, at 10) = %v, want ErrFailedPrecondition", from, err)
		}
		if got, err := e.readAll(blob, 3); err != nil || string(got) != "xyz" {
			t.Errorf("refused chunk's blob: %q, %v; want it still staged", got, err)
		}
	}
	err := e.b.AppendUploadBlob(e.ctx, core.AppendUploadParams{ID: "missing", Blob: e.stage([]byte("a"), T0), From: 0, To: 1, Now: T0})
	if !errors.Is(err, core.ErrFailedPrecondition) {
		t.Errorf("AppendUploadBlob(missing session) = %v, want ErrFailedPrecondition", err)
	}
	_, err = e.b.UploadDigest(e.ctx, "missing")
	wantNotFound(t, "UploadDigest(missing)", err)
	if got := e.getUploadOf(u.ID); got.Received != 10 || !got.UpdateTime.Equal(T0) {
		t.Errorf("session after refused chunks: Received %d, UpdateTime %v", got.Received, got.UpdateTime)
	}
	f := uploadFile(u, 10)
	if err := e.b.FinishUpload(e.ctx, u.ID, f); err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "contents", e.contents("", f.ID), first)
}

// testBlobUploadConcurrent: of concurrent chunks at one offset (the same
// chunk retried through two instances), exactly one is appended.
func testBlobUploadConcurrent(t *testing.T, e *blobEnv) {
	u := e.newUpload(-1)
	const n = 6
	datas := make([][]byte, n)
	blobs := make([]string, n)
	for i := range n {
		datas[i] = bytesOf(blobChunkHint/4+i, uint64(20+i))
		blobs[i] = e.stage(datas[i], T0)
	}
	var mu sync.Mutex
	won := -1
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := e.b.AppendUploadBlob(e.ctx, core.AppendUploadParams{ID: u.ID, Blob: blobs[i], From: 0,
				To: int64(len(datas[i])), Now: T0.Add(time.Second)})
			switch {
			case err == nil:
				mu.Lock()
				if won >= 0 {
					t.Errorf("chunks %d and %d both appended at offset 0", won, i)
				}
				won = i
				mu.Unlock()
			case !errors.Is(err, core.ErrFailedPrecondition):
				t.Errorf("AppendUploadBlob: %v", err)
			}
		})
	}
	wg.Wait()
	if won < 0 {
		t.Fatal("no chunk was appended")
	}
	f := uploadFile(u, int64(len(datas[won])))
	if err := e.b.FinishUpload(e.ctx, u.ID, f); err != nil {
		t.Fatalf("FinishUpload: %v", err)
	}
	wantBytes(t, "contents", e.contents("", f.ID), datas[won])
}

func testBlobFinishRefused(t *testing.T, e *blobEnv) {
	taken := e.newFile("", []byte("taken"))
	u := e.newUpload(4)
	if err := e.b.AppendUploadBlob(e.ctx, core.AppendUploadParams{ID: u.ID, Blob: e.stage([]byte("abcd"), T0), From: 0, To: 4, Now: T0}); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{3, 5} {
		err := e.b.FinishUpload(e.ctx, u.ID, uploadFile(u, size))
		if !errors.Is(err, core.ErrFailedPrecondition) {
			t.Errorf("FinishUpload(size %d of 4) = %v, want ErrFailedPrecondition", size, err)
		}
	}
	dup := uploadFile(u, 4)
	dup.ID = taken.ID
	if err := e.b.FinishUpload(e.ctx, u.ID, dup); !errors.Is(err, core.ErrAlreadyExists) {
		t.Errorf("FinishUpload(taken id) = %v, want ErrAlreadyExists", err)
	}
	wantBytes(t, "the taken file", e.contents("", taken.ID), []byte("taken"))
	wantNotFound(t, "FinishUpload(missing)", e.b.FinishUpload(e.ctx, "missing", uploadFile(u, 0)))
	// The session is intact after every refusal.
	f := uploadFile(u, 4)
	if err := e.b.FinishUpload(e.ctx, u.ID, f); err != nil {
		t.Fatalf("FinishUpload after refusals: %v", err)
	}
	wantBytes(t, "contents", e.contents("", f.ID), []byte("abcd"))
}

// testBlobDeleteUpload: deleting a session (cancel, stale sweep) deletes
// its bytes: a session re-created under the same id starts empty.
func testBlobDeleteUpload(t *testing.T, e *blobEnv) {
	u := e.newUpload(-1)
	data := bytesOf(blobChunkHint+1, 30)
	if err := e.b.AppendUploadBlob(e.ctx, core.AppendUploadParams{ID: u.ID, Blob: e.stage(data, T0), From: 0, To: int64(len(data)), Now: T0}); err != nil {
		t.Fatal(err)
	}
	if err := e.b.DeleteUpload(e.ctx, u.ID); err != nil {
		t.Fatalf("DeleteUpload: %v", err)
	}
	wantNotFound(t, "DeleteUpload again", e.b.DeleteUpload(e.ctx, u.ID))
	again := *u
	again.Received = 0
	if err := e.b.CreateUpload(e.ctx, &again); err != nil {
		t.Fatal(err)
	}
	f := uploadFile(&again, 0)
	if err := e.b.FinishUpload(e.ctx, again.ID, f); err != nil {
		t.Fatal(err)
	}
	blob, _, err := e.b.FileBlob(e.ctx, "", f.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.wantGone("bytes of a deleted session", blob)
}

func testDeleteStaleBlobs(t *testing.T, e *blobEnv) {
	cutoff := T0.Add(-30 * time.Minute)
	old := []string{e.stage(bytesOf(blobChunkHint+1, 40), T0.Add(-2*time.Hour)), e.stage([]byte("x"), cutoff.Add(-time.Microsecond))}
	fresh := e.stage([]byte("fresh"), cutoff)
	// Handed over long ago: a file and an upload's bytes are not staged.
	f := NewFile(e.p, T0)
	f.SizeBytes = 4
	if err := e.b.CreateFileWithBlob(e.ctx, f, e.stage([]byte("file"), T0.Add(-48*time.Hour)), false); err != nil {
		t.Fatal(err)
	}
	u := e.newUpload(-1)
	if err := e.b.AppendUploadBlob(e.ctx, core.AppendUploadParams{ID: u.ID, Blob: e.stage([]byte("part"), T0.Add(-48*time.Hour)), From: 0, To: 4, Now: T0}); err != nil {
		t.Fatal(err)
	}

	n, err := e.b.DeleteStaleBlobs(e.ctx, cutoff, 1)
	if err != nil || n != 1 {
		t.Fatalf("DeleteStaleBlobs(limit 1) = %d, %v; want 1", n, err)
	}
	n, err = e.b.DeleteStaleBlobs(e.ctx, cutoff, 100)
	if err != nil || n != 1 {
		t.Fatalf("DeleteStaleBlobs = %d, %v; want the other stale blob", n, err)
	}
	for _, b := range old {
		e.wantGone("stale blob", b)
	}
	if got, err := e.readAll(fresh, 5); err != nil || string(got) != "fresh" {
		t.Errorf("blob staged at the cutoff: %q, %v; want it kept", got, err)
	}
	wantBytes(t, "file", e.contents("", f.ID), []byte("file"))
	uf := uploadFile(u, 4)
	if err := e.b.FinishUpload(e.ctx, u.ID, uf); err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "upload", e.contents("", uf.ID), []byte("part"))
}
