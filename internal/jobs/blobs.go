package jobs

import (
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// blobs keeps the contents of files and of resumable uploads in progress,
// together with their rows in the store: storeBlobs in the database when
// the store is a core.BlobStore (PostgreSQL: every instance serves every
// file), diskBlobs under Config.Dir otherwise (one SQLite process).
//
// Whatever the implementation, a file becomes visible only with all its
// bytes, and deleting a file or a session deletes its bytes.
type blobs interface {
	// CreateFile stores the bytes of r as f's contents and creates f,
	// setting f.SizeBytes and f.SHA256. With replace, an earlier file of
	// the same id in f's project (a resumed job rewriting its output) is
	// replaced; otherwise core.ErrAlreadyExists if the id is taken. An
	// error of r (a body over its limit) is returned as is.
	CreateFile(ctx context.Context, f *core.File, r io.Reader, replace bool) error
	// Open returns the contents of a file of the project (any project when
	// projectID is empty). core.ErrNotFound if they are missing.
	Open(ctx context.Context, projectID, id string) (FileContent, error)
	// DeleteFile deletes a file of the project (any project when projectID
	// is empty) and its contents.
	DeleteFile(ctx context.Context, projectID, id string) error

	// StartUpload creates the session u, with no bytes.
	StartUpload(ctx context.Context, u *core.Upload) error
	// AppendUpload stores the bytes of r after the u.Received bytes of
	// session u and advances it; core.ErrFailedPrecondition if another
	// chunk advanced it first. Nothing is appended if reading r fails.
	AppendUpload(ctx context.Context, u *core.Upload, r io.Reader) (int64, error)
	// FinishUpload creates f from the u.Received bytes of session u and
	// ends the session, setting f.SizeBytes and f.SHA256.
	FinishUpload(ctx context.Context, u *core.Upload, f *core.File) error
	// DeleteUpload ends a session and deletes its bytes.
	DeleteUpload(ctx context.Context, id string) error

	// Sweep deletes bytes written before cutoff that no file or session
	// owns: what a crash left behind mid-write.
	Sweep(ctx context.Context, cutoff time.Time) error
}

// FileContent is a file's bytes opened for reading. It seeks, so that
// http.ServeContent answers Range requests.
type FileContent interface {
	io.ReadSeekCloser
	Size() int64
}

// stagedTTL is how long written bytes may stay without an owner before
// Sweep deletes them: longer than any transfer (extendDeadlines gives one
// an hour), so only a crashed writer's leftovers qualify.
const stagedTTL = 2 * time.Hour

// capReader reads r and fails with err once more than left bytes came.
type capReader struct {
	r    io.Reader
	left int64
	err  error
}

// Read implements io.Reader.
func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, c.err
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	if c.left -= int64(n); c.left < 0 {
		return n, c.err
	}
	return n, err
}

// Errors of capped upload bodies, turned into INVALID_ARGUMENT by their
// callers.
var (
	errFileTooLarge   = errors.New("the file is larger than the limit")
	errBeyondDeclared = errors.New("more bytes than declared")
)

// newBlobs picks where file contents live (see blobs).
func newBlobs(cfg Config) blobs {
	disk := &diskBlobs{dir: cfg.Dir, store: cfg.Store, clock: cfg.Clock, log: cfg.Logger}
	if bs, ok := cfg.Store.(core.BlobStore); ok {
		return &storeBlobs{store: cfg.Store, bs: bs, clock: cfg.Clock, legacy: disk}
	}
	return disk
}

// storeBlobs keeps file contents in a core.BlobStore. Bytes are hashed as
// they stream in; an upload's running hash is stored with each chunk, so
// finishing it reads nothing back.
type storeBlobs struct {
	store core.JobStore
	bs    core.BlobStore
	clock core.Clock
	// legacy serves files stored on this instance's disk before the store
	// kept contents (files.blob empty); they expire within FileTTL.
	legacy *diskBlobs
}

// CreateFile implements blobs.
func (b *storeBlobs) CreateFile(ctx context.Context, f *core.File, r io.Reader, replace bool) error {
	h := sha256.New()
	blob, n, err := b.bs.WriteBlob(ctx, io.TeeReader(r, h), b.clock.Now())
	if err != nil {
		return err
	}
	f.SizeBytes, f.SHA256 = n, h.Sum(nil)
	if err := b.bs.CreateFileWithBlob(ctx, f, blob, replace); err != nil {
		b.drop(ctx, blob)
		return err
	}
	return nil
}

// drop deletes a staged blob that found no owner (also when ctx is done:
// the request that wrote it ended). If that fails, Sweep deletes it.
func (b *storeBlobs) drop(ctx context.Context, blob string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = b.bs.DeleteBlob(ctx, blob)
}

// Open implements blobs.
func (b *storeBlobs) Open(ctx context.Context, projectID, id string) (FileContent, error) {
	blob, size, err := b.bs.FileBlob(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	if blob == "" {
		return b.legacy.Open(ctx, projectID, id)
	}
	return &blobReader{ctx: ctx, bs: b.bs, blob: blob, size: size}, nil
}

// DeleteFile implements blobs: the store deletes the contents with the
// row.
func (b *storeBlobs) DeleteFile(ctx context.Context, projectID, id string) error {
	if err := b.store.DeleteFile(ctx, projectID, id); err != nil {
		return err
	}
	_ = os.Remove(b.legacy.filePath(projectID, id))
	return nil
}

// StartUpload implements blobs.
func (b *storeBlobs) StartUpload(ctx context.Context, u *core.Upload) error {
	return b.store.CreateUpload(ctx, u)
}

// AppendUpload implements blobs: the chunk is staged, then appended with
// the hash state after it in one transaction, which fails if another
// chunk (on any instance) got there first.
func (b *storeBlobs) AppendUpload(ctx context.Context, u *core.Upload, r io.Reader) (int64, error) {
	state, err := b.bs.UploadDigest(ctx, u.ID)
	if err != nil {
		return 0, err
	}
	h, err := resumeHash(state)
	if err != nil {
		return 0, err
	}
	now := b.clock.Now()
	blob, n, err := b.bs.WriteBlob(ctx, io.TeeReader(r, h), now)
	if err != nil {
		return 0, err
	}
	state, err = h.(encoding.BinaryMarshaler).MarshalBinary()
	if err == nil {
		err = b.bs.AppendUploadBlob(ctx, core.AppendUploadParams{ID: u.ID, Blob: blob, From: u.Received,
			To: u.Received + n, Digest: state, Now: now})
	}
	if err != nil {
		b.drop(ctx, blob)
		return 0, err
	}
	return n, nil
}

// resumeHash returns a SHA-256 continuing from a marshalled state (a fresh
// one for an empty state).
func resumeHash(state []byte) (hash.Hash, error) {
	h := sha256.New()
	if len(state) > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
			return nil, fmt.Errorf("jobs: upload hash state: %w", err)
		}
	}
	return h, nil
}

// FinishUpload implements blobs.
func (b *storeBlobs) FinishUpload(ctx context.Context, u *core.Upload, f *core.File) error {
	state, err := b.bs.UploadDigest(ctx, u.ID)
	if err != nil {
		return err
	}
	h, err := resumeHash(state)
	if err != nil {
		return err
	}
	f.SizeBytes, f.SHA256 = u.Received, h.Sum(nil)
	return b.bs.FinishUpload(ctx, u.ID, f)
}

// DeleteUpload implements blobs: the store deletes the bytes with the
// session.
func (b *storeBlobs) DeleteUpload(ctx context.Context, id string) error {
	return b.store.DeleteUpload(ctx, id)
}

// Sweep implements blobs.
func (b *storeBlobs) Sweep(ctx context.Context, cutoff time.Time) error {
	for {
		n, err := b.bs.DeleteStaleBlobs(ctx, cutoff, 100)
		if err != nil || n < 100 {
			return err
		}
	}
}

// blobReader reads a blob one stored chunk at a time: a download holds at
// most one chunk in memory and no database connection between reads.
type blobReader struct {
	ctx   context.Context
	bs    core.BlobStore
	blob  string
	size  int64
	pos   int64
	start int64  // offset of buf's first byte
	buf   []byte // the chunk read last
}

// Size implements FileContent.
func (r *blobReader) Size() int64 { return r.size }

// Read implements io.Reader.
func (r *blobReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.pos < r.start || r.pos >= r.start+int64(len(r.buf)) {
		start, data, err := r.bs.ReadBlob(r.ctx, r.blob, r.pos, r.buf)
		if errors.Is(err, core.ErrNotFound) {
			// Deleted or replaced (a resumed job rewrote it) meanwhile.
			err = fmt.Errorf("jobs: the file's contents changed during the read: %w", io.ErrUnexpectedEOF)
		}
		if err != nil {
			return 0, err
		}
		r.start, r.buf = start, data
	}
	avail := r.buf[r.pos-r.start:]
	if rest := r.size - r.pos; int64(len(avail)) > rest {
		avail = avail[:rest]
	}
	n := copy(p, avail)
	r.pos += int64(n)
	return n, nil
}

// Seek implements io.Seeker.
func (r *blobReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	}
	if offset < 0 {
		return r.pos, errors.New("jobs: seek before the start of a file")
	}
	r.pos = offset
	return offset, nil
}

// Close implements io.Closer.
func (r *blobReader) Close() error {
	r.buf = nil
	return nil
}

// logRemove warns about a file that could not be removed.
func logRemove(log *slog.Logger, path string, err error) {
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Warn("file.remove_failed", slog.String("path", path), slog.String("error", err.Error()))
	}
}
