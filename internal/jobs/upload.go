package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/longhook/longhook/internal/core"
)

// errConcurrentChunk is the message of a chunk that lost a race with
// another chunk of the same session.
const errConcurrentChunk = "another chunk of this upload arrived concurrently; query the session and resume"

// CreateUploadedFile stores the bytes of r as a new uploaded file of the
// project (a one-shot upload). Bytes beyond MaxUploadBytes fail it with
// INVALID_ARGUMENT; an error of r is returned as is.
func (s *Service) CreateUploadedFile(ctx context.Context, projectID string, m FileMeta, r io.Reader) (*core.File, error) {
	f, err := s.newFile(ctx, projectID, m)
	if err != nil {
		return nil, err
	}
	err = s.createFile(ctx, f, &capReader{r: r, left: s.cfg.MaxUploadBytes, err: errFileTooLarge}, false)
	if errors.Is(err, errFileTooLarge) {
		return nil, s.tooLarge()
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// tooLarge is the error of a file over MaxUploadBytes.
func (s *Service) tooLarge() error {
	return core.Invalid("body", "the file is larger than the limit of %d bytes", s.cfg.MaxUploadBytes)
}

// StartUpload opens a resumable upload session for a file of the project.
func (s *Service) StartUpload(ctx context.Context, projectID string, m FileMeta) (*core.Upload, error) {
	f, err := s.newFile(ctx, projectID, m)
	if err != nil {
		return nil, err
	}
	u := &core.Upload{ID: core.NewID(), ProjectID: projectID, File: *f, Size: m.Size, CreateTime: f.CreateTime, UpdateTime: f.CreateTime}
	if err := s.blobs.StartUpload(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// Upload returns an upload session; its id is its credential.
func (s *Service) Upload(ctx context.Context, id string) (*core.Upload, error) {
	u, err := s.store.GetUpload(ctx, id)
	return u, core.OrNotFound(err, "The upload session")
}

// CancelUpload ends a session and deletes its bytes.
func (s *Service) CancelUpload(ctx context.Context, id string) error {
	return s.blobs.DeleteUpload(ctx, id)
}

// AppendUpload appends the bytes of r to session u at u.Received, within
// the declared size. It returns how many bytes it appended.
func (s *Service) AppendUpload(ctx context.Context, u *core.Upload, r io.Reader) (int64, error) {
	if u.Size >= 0 {
		r = &capReader{r: r, left: u.Size - u.Received, err: errBeyondDeclared}
	}
	n, err := s.blobs.AppendUpload(ctx, u, r)
	switch {
	case errors.Is(err, errBeyondDeclared):
		return 0, core.Invalid("body", "received more than the declared %d bytes", u.Size)
	case errors.Is(err, core.ErrFailedPrecondition):
		return 0, core.Errorf(core.ErrFailedPrecondition, errConcurrentChunk)
	case err != nil:
		return 0, fmt.Errorf("jobs: upload chunk: %w", err)
	}
	return n, nil
}

// FinishUpload turns the received bytes of session u into its file and
// ends the session.
func (s *Service) FinishUpload(ctx context.Context, u *core.Upload, received int64) (*core.File, error) {
	if u.Size >= 0 && received != u.Size {
		return nil, core.Invalid("X-Goog-Upload-Command", "cannot finalize: received %d bytes of the declared %d", received, u.Size)
	}
	f := u.File
	f.CreateTime, f.UpdateTime = u.CreateTime, s.cfg.Clock.Now()
	u.Received = received
	err := s.blobs.FinishUpload(ctx, u, &f)
	switch {
	case errors.Is(err, core.ErrAlreadyExists):
		return nil, core.Invalid("file.name", "files/%s already exists", f.ID)
	case errors.Is(err, core.ErrFailedPrecondition):
		return nil, core.Errorf(core.ErrFailedPrecondition, errConcurrentChunk)
	case err != nil:
		return nil, err
	}
	return &f, nil
}
