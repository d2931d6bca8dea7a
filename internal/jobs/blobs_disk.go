package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// diskBlobs keeps file contents under dir: files/{project}/{id} (file ids
// are unique within a project only), and uploads/{session}.part for
// resumable uploads in progress. A file is
// written to a temporary name next to its final one, synced, recorded in
// the store and renamed into place. It serves one process: the chunks of a
// session are serialised by an in-process lock.
type diskBlobs struct {
	dir   string
	store core.JobStore
	clock core.Clock
	log   *slog.Logger
	locks sync.Map // upload id → *sync.Mutex held while a chunk is written
}

// lockUpload serialises the writers of a session's part file.
func (d *diskBlobs) lockUpload(id string) (unlock func()) {
	m, _ := d.locks.LoadOrStore(id, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// filePath is where the contents of a file of the project live.
func (d *diskBlobs) filePath(projectID, id string) string {
	return filepath.Join(d.dir, "files", projectDir(projectID), id)
}

// projectDir names a project's directory under files/: the project id
// itself when it is a plain name (ids are core.NewID's hex), else "~" and
// its hex, which no plain name starts with.
func projectDir(projectID string) string {
	plain := projectID != ""
	for _, c := range projectID {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			plain = false
			break
		}
	}
	if plain {
		return projectID
	}
	return "~" + hex.EncodeToString([]byte(projectID))
}

// moveLegacyFiles moves the contents stored as files/{id}, from before
// file ids were unique per project only, to files/{project}/{id}. It runs
// when the service starts, before any request: until then ids were
// unique across projects, so the one file of that id owns the contents.
// Contents without a file are left alone.
func (d *diskBlobs) moveLegacyFiles(ctx context.Context) error {
	entries, err := os.ReadDir(filepath.Join(d.dir, "files"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("jobs: move files: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		f, err := d.store.GetFile(ctx, "", e.Name())
		if errors.Is(err, core.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("jobs: move files: %w", err)
		}
		to := d.filePath(f.ProjectID, f.ID)
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			return fmt.Errorf("jobs: move files: %w", err)
		}
		if err := os.Rename(filepath.Join(d.dir, "files", e.Name()), to); err != nil {
			return fmt.Errorf("jobs: move files: %w", err)
		}
		d.log.Info("jobs.file_moved", slog.String("file", "files/"+f.ID), slog.String("project", f.ProjectID))
	}
	return nil
}

func (d *diskBlobs) uploadPath(id string) string {
	return filepath.Join(d.dir, "uploads", id+".part")
}

// tempPrefix starts the names of files being written under files/.
const tempPrefix = ".tmp-"

// CreateFile implements blobs.
func (d *diskBlobs) CreateFile(ctx context.Context, f *core.File, r io.Reader, replace bool) error {
	fh, err := os.CreateTemp(filepath.Join(d.dir, "files"), tempPrefix+f.ID+"-*")
	if err != nil {
		return fmt.Errorf("jobs: store file: %w", err)
	}
	tmp := fh.Name()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(fh, h), r)
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		f.SizeBytes, f.SHA256 = n, h.Sum(nil)
		err = d.commit(ctx, f, tmp, replace)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// commit records f and renames tmp into place as its contents. The row
// comes first, so that a taken id never overwrites another file's bytes;
// until the rename, a download of f finds no contents (NOT_FOUND), never a
// part of them.
func (d *diskBlobs) commit(ctx context.Context, f *core.File, tmp string, replace bool) error {
	err := d.store.CreateFile(ctx, f)
	if replace && errors.Is(err, core.ErrAlreadyExists) {
		if err = d.store.DeleteFile(ctx, f.ProjectID, f.ID); err == nil {
			err = d.store.CreateFile(ctx, f)
		}
	}
	if err != nil {
		return err
	}
	to := d.filePath(f.ProjectID, f.ID)
	err = os.MkdirAll(filepath.Dir(to), 0o700)
	if err == nil {
		err = os.Rename(tmp, to)
	}
	if err != nil {
		_ = d.store.DeleteFile(context.WithoutCancel(ctx), f.ProjectID, f.ID)
		return fmt.Errorf("jobs: store file: %w", err)
	}
	return nil
}

// diskContent is an open file of the disk.
type diskContent struct {
	*os.File
	size int64
}

// Size implements FileContent.
func (c diskContent) Size() int64 { return c.size }

// Open implements blobs.
func (d *diskBlobs) Open(ctx context.Context, projectID, id string) (FileContent, error) {
	if _, err := d.store.GetFile(ctx, projectID, id); err != nil {
		return nil, err
	}
	fh, err := os.Open(d.filePath(projectID, id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("jobs: contents of files/%s: %w", id, core.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("jobs: open file: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("jobs: open file: %w", err)
	}
	return diskContent{fh, st.Size()}, nil
}

// DeleteFile implements blobs.
func (d *diskBlobs) DeleteFile(ctx context.Context, projectID, id string) error {
	if err := d.store.DeleteFile(ctx, projectID, id); err != nil {
		return err
	}
	logRemove(d.log, d.filePath(projectID, id), os.Remove(d.filePath(projectID, id)))
	return nil
}

// StartUpload implements blobs.
func (d *diskBlobs) StartUpload(ctx context.Context, u *core.Upload) error {
	if err := os.WriteFile(d.uploadPath(u.ID), nil, 0o600); err != nil {
		return fmt.Errorf("jobs: upload: %w", err)
	}
	if err := d.store.CreateUpload(ctx, u); err != nil {
		_ = os.Remove(d.uploadPath(u.ID))
		return err
	}
	return nil
}

// AppendUpload implements blobs: under the session's lock, and only if the
// session is still at u.Received, the chunk is written at that offset
// (dropping the tail of an earlier chunk that was never acknowledged), then
// the session advances.
func (d *diskBlobs) AppendUpload(ctx context.Context, u *core.Upload, r io.Reader) (int64, error) {
	defer d.lockUpload(u.ID)()
	cur, err := d.store.GetUpload(ctx, u.ID)
	if err != nil {
		return 0, err
	}
	if cur.Received != u.Received {
		return 0, fmt.Errorf("jobs: upload %s is at %d, not %d: %w", u.ID, cur.Received, u.Received, core.ErrFailedPrecondition)
	}
	fh, err := os.OpenFile(d.uploadPath(u.ID), os.O_WRONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("jobs: upload chunk: %w", err)
	}
	defer fh.Close()
	if err := fh.Truncate(u.Received); err != nil {
		return 0, fmt.Errorf("jobs: upload chunk: %w", err)
	}
	if _, err := fh.Seek(u.Received, io.SeekStart); err != nil {
		return 0, fmt.Errorf("jobs: upload chunk: %w", err)
	}
	n, err := io.Copy(fh, r)
	if err != nil {
		return 0, err
	}
	if err := d.store.AdvanceUpload(ctx, u.ID, u.Received, u.Received+n, d.clock.Now()); err != nil {
		return 0, err
	}
	return n, nil
}

// FinishUpload implements blobs.
func (d *diskBlobs) FinishUpload(ctx context.Context, u *core.Upload, f *core.File) error {
	defer d.lockUpload(u.ID)()
	cur, err := d.store.GetUpload(ctx, u.ID)
	if err != nil {
		return err
	}
	if cur.Received != u.Received {
		return fmt.Errorf("jobs: upload %s is at %d, not %d: %w", u.ID, cur.Received, u.Received, core.ErrFailedPrecondition)
	}
	path := d.uploadPath(u.ID)
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("jobs: finish upload: %w", err)
	}
	// Bytes past Received are a chunk that was never acknowledged.
	err = fh.Truncate(u.Received)
	h := sha256.New()
	if err == nil {
		_, err = io.Copy(h, fh)
	}
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("jobs: finish upload: %w", err)
	}
	f.SizeBytes, f.SHA256 = u.Received, h.Sum(nil)
	if err := d.commit(ctx, f, path, false); err != nil {
		return err
	}
	_ = d.store.DeleteUpload(ctx, u.ID)
	d.locks.Delete(u.ID)
	return nil
}

// DeleteUpload implements blobs.
func (d *diskBlobs) DeleteUpload(ctx context.Context, id string) error {
	err := d.store.DeleteUpload(ctx, id)
	if err == nil || errors.Is(err, core.ErrNotFound) {
		logRemove(d.log, d.uploadPath(id), os.Remove(d.uploadPath(id)))
		d.locks.Delete(id)
	}
	return err
}

// Sweep implements blobs: temporary files, and parts whose session is
// gone, last written before cutoff.
func (d *diskBlobs) Sweep(ctx context.Context, cutoff time.Time) error {
	err := sweepDir(filepath.Join(d.dir, "files"), cutoff, func(name string) bool {
		return strings.HasPrefix(name, tempPrefix)
	})
	if err != nil {
		return err
	}
	return sweepDir(filepath.Join(d.dir, "uploads"), cutoff, func(name string) bool {
		id, ok := strings.CutSuffix(name, ".part")
		if !ok {
			return false
		}
		_, err := d.store.GetUpload(ctx, id)
		return errors.Is(err, core.ErrNotFound)
	})
}

// sweepDir removes the regular files of dir last modified before cutoff
// that match.
func sweepDir(dir string, cutoff time.Time, match func(name string) bool) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("jobs: sweep: %w", err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || !info.ModTime().Before(cutoff) || !match(e.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("jobs: sweep: %w", err)
		}
	}
	return nil
}
