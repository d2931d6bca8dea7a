package core

import (
	"context"
	"io"
	"time"
)

// BlobStore keeps the contents of files and of resumable uploads in the
// database, so that every process sharing it serves every file
// (PostgreSQL). It is optional: a JobStore without it leaves the contents
// to its caller (internal/jobs then keeps them on local disk, which suits
// a single SQLite process).
//
// Contents are written first as a staged blob (WriteBlob, in short
// statements of at most a chunk each, never one long transaction) and then
// handed in one transaction to the row that owns them: a new file
// (CreateFileWithBlob), or the next bytes of an upload session
// (AppendUploadBlob), whose bytes become a file with FinishUpload. A file
// is therefore never visible without all its bytes, and a crash leaves at
// most a staged blob, which DeleteStaleBlobs removes. A BlobStore's
// DeleteFile and DeleteUpload delete the row's contents in the same
// transaction.
type BlobStore interface {
	// WriteBlob stores the bytes of r as a new staged blob and returns its
	// id and length. now dates it for DeleteStaleBlobs. On error nothing is
	// kept (or, if even the cleanup failed, DeleteStaleBlobs removes it).
	WriteBlob(ctx context.Context, r io.Reader, now time.Time) (blob string, n int64, err error)
	// DeleteBlob deletes a staged blob that was not handed to a file or an
	// upload. Deleting a missing blob is not an error.
	DeleteBlob(ctx context.Context, blob string) error
	// ReadBlob appends to buf[:0] the stored chunk of blob that holds byte
	// off and returns the offset of the chunk's first byte and its bytes
	// (at most a few MiB). ErrNotFound when no stored chunk holds off (past
	// the end, or the blob was deleted or replaced).
	ReadBlob(ctx context.Context, blob string, off int64, buf []byte) (start int64, data []byte, err error)

	// CreateFileWithBlob creates f with the staged blob as its contents, in
	// one transaction; f.SizeBytes must be the blob's length. With replace,
	// a file of the same id in f's project is deleted first, contents and
	// all. ErrAlreadyExists if the id is taken in f's project (the blob is
	// then still staged).
	CreateFileWithBlob(ctx context.Context, f *File, blob string, replace bool) error
	// FileBlob returns the blob holding the contents of a file of the
	// project (the first of that id in any project when projectID is
	// empty) and its length;
	// ErrNotFound if there is no such file. blob is empty for a file
	// created by CreateFile without contents.
	FileBlob(ctx context.Context, projectID, id string) (blob string, size int64, err error)

	// AppendUploadBlob appends a staged blob to upload session p.ID's bytes
	// and advances the session from p.From to p.To (From plus the blob's
	// length), storing p.Digest with it, in one transaction;
	// ErrFailedPrecondition if the session is not at From (a concurrent or
	// out-of-order chunk: the blob is then still staged).
	AppendUploadBlob(ctx context.Context, p AppendUploadParams) error
	// UploadDigest returns the Digest stored by the session's last
	// AppendUploadBlob (empty before the first). ErrNotFound if there is no
	// such session.
	UploadDigest(ctx context.Context, id string) ([]byte, error)
	// FinishUpload creates f with the bytes of upload session id and
	// deletes the session, in one transaction. f.SizeBytes must equal the
	// session's Received (ErrFailedPrecondition otherwise: a chunk arrived
	// meanwhile). ErrAlreadyExists if f.ID is taken in f's project; ErrNotFound if there is
	// no such session. On error the session is unchanged.
	FinishUpload(ctx context.Context, id string, f *File) error

	// DeleteStaleBlobs deletes up to limit staged blobs written before
	// cutoff (by a writer that crashed or failed to clean up) and returns
	// how many it deleted.
	DeleteStaleBlobs(ctx context.Context, cutoff time.Time, limit int) (int, error)
}

// AppendUploadParams hands a staged blob to an upload session.
type AppendUploadParams struct {
	ID       string // the session
	Blob     string // the staged blob holding the bytes from From to To
	From, To int64
	// Digest is the caller's running hash state after the bytes up to To
	// (opaque to the store), so that finishing needs no second read.
	Digest []byte
	Now    time.Time // the session's new UpdateTime
}
