package jobs

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// File sources, as the Files API spells them.
const (
	sourceUploaded  = "UPLOADED"
	sourceGenerated = "GENERATED"
)

// FileMeta is what a client says about a file it uploads.
type FileMeta struct {
	ID, DisplayName, MIMEType string
	Size                      int64 // -1: unknown
}

// Files lists a page of a project's files, newest first, before the
// exclusive cursor beforeID.
func (s *Service) Files(ctx context.Context, projectID, beforeID string, limit int) ([]*core.File, error) {
	return s.store.ListFiles(ctx, projectID, beforeID, limit)
}

// File returns a file of the project.
func (s *Service) File(ctx context.Context, projectID, id string) (*core.File, error) {
	f, err := s.store.GetFile(ctx, projectID, id)
	return f, core.OrNotFound(err, "File files/"+id)
}

// OpenFile returns the contents of a file of the project.
func (s *Service) OpenFile(ctx context.Context, projectID, id string) (FileContent, error) {
	c, err := s.blobs.Open(ctx, projectID, id)
	return c, core.OrNotFound(err, "The content of files/"+id)
}

// DeleteFile deletes a file of the project and its contents.
func (s *Service) DeleteFile(ctx context.Context, projectID, id string) error {
	return core.OrNotFound(s.blobs.DeleteFile(ctx, projectID, id), "File files/"+id)
}

// createFile stores the bytes of r as f's contents and creates f (see
// blobs.CreateFile); a taken id is INVALID_ARGUMENT.
func (s *Service) createFile(ctx context.Context, f *core.File, r io.Reader, replace bool) error {
	err := s.blobs.CreateFile(ctx, f, r, replace)
	if errors.Is(err, core.ErrAlreadyExists) {
		return core.Invalid("file.name", "files/%s already exists", f.ID)
	}
	return err
}

// tempPath returns a fresh path under Dir/tmp, for an executor to write a
// file that is then stored with createFile.
func (s *Service) tempPath(id string) string {
	return filepath.Join(s.cfg.Dir, "tmp", id+"-"+core.NewID()[:8])
}

// SweepFiles deletes expired files and abandoned upload sessions, with
// their contents, and what a crash left mid-write (the "jobs.sweep_files"
// task).
func (s *Service) SweepFiles(ctx context.Context, now time.Time) error {
	fs, err := s.store.ExpiredFiles(ctx, now, 500)
	if err != nil {
		return err
	}
	for _, f := range fs {
		if err := s.blobs.DeleteFile(ctx, f.ProjectID, f.ID); err != nil && !errors.Is(err, core.ErrNotFound) {
			return err
		}
	}
	us, err := s.store.StaleUploads(ctx, now.Add(-s.cfg.FileTTL), 500)
	if err != nil {
		return err
	}
	for _, u := range us {
		if err := s.blobs.DeleteUpload(ctx, u.ID); err != nil && !errors.Is(err, core.ErrNotFound) {
			return err
		}
	}
	if err := s.sweepTemp(now); err != nil {
		return err
	}
	return s.blobs.Sweep(ctx, now.Add(-stagedTTL))
}

// sweepTemp removes what a crash left in Dir/tmp (a video being rendered).
// Each process does it when it starts, as the leader's sweep sees only its
// own Dir; a render may legitimately take hours, so only files older than
// FileTTL go.
func (s *Service) sweepTemp(now time.Time) error {
	return sweepDir(filepath.Join(s.cfg.Dir, "tmp"), now.Add(-s.cfg.FileTTL), func(string) bool { return true })
}

// newFile prepares the File an upload creates, checking that a chosen id
// is free in the project (ids are unique per project: another project's
// file of that id is neither refused nor revealed).
func (s *Service) newFile(ctx context.Context, projectID string, m FileMeta) (*core.File, error) {
	now := s.cfg.Clock.Now()
	f := &core.File{ID: m.ID, ProjectID: projectID, DisplayName: m.DisplayName, MIMEType: m.MIMEType,
		Source: sourceUploaded, CreateTime: now, UpdateTime: now, ExpireTime: now.Add(s.cfg.FileTTL)}
	if f.ID == "" {
		f.ID = core.NewSortableID(now)
	} else if _, err := s.store.GetFile(ctx, projectID, f.ID); err == nil {
		return nil, core.Invalid("file.name", "files/%s already exists", f.ID)
	} else if !errors.Is(err, core.ErrNotFound) {
		return nil, err
	}
	if f.MIMEType == "" {
		f.MIMEType = "application/octet-stream"
	}
	if m.Size > s.cfg.MaxUploadBytes {
		return nil, core.Invalid("file.sizeBytes", "the file is larger than the limit of %d bytes", s.cfg.MaxUploadBytes)
	}
	return f, nil
}
