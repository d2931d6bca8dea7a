package jobs

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
)

// upload serves POST|PUT /upload/{v}/files: Google's resumable protocol
// (X-Goog-Upload-Protocol: resumable, start → upload/finalize on the
// session URL, also query and cancel), a multipart/related upload (JSON
// metadata part, then the media part) and a raw upload (the body is the
// file; metadata from headers).
func (s *Service) upload(w http.ResponseWriter, r *http.Request, key core.APIKey) {
	extendDeadlines(w)
	if id := r.URL.Query().Get("upload_id"); id != "" {
		s.uploadChunk(w, r, id)
		return
	}
	protocol := strings.ToLower(firstNonEmpty(r.Header.Get("X-Goog-Upload-Protocol"), r.URL.Query().Get("uploadType")))
	mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var err error
	switch {
	case protocol == "resumable":
		err = s.startUpload(w, r, key)
	case protocol == "multipart" || strings.HasPrefix(mediaType, "multipart/"):
		err = s.multipartUpload(w, r, key, params["boundary"])
	default:
		err = s.rawUpload(w, r, key)
	}
	if err != nil {
		s.writeError(w, r, err)
	}
}

// extendDeadlines lifts the server's read and write timeouts for one
// transfer of file bytes (uploads and downloads of up to MaxUploadBytes
// outlast a management call's deadline).
func extendDeadlines(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	until := time.Now().Add(time.Hour)
	_ = rc.SetReadDeadline(until)
	_ = rc.SetWriteDeadline(until)
}

// origin is the external scheme://host of the server.
func (s *Service) origin(r *http.Request) string {
	return strings.TrimSuffix(s.apiBase(r, "x"), "/x")
}

func (s *Service) startUpload(w http.ResponseWriter, r *http.Request, key core.APIKey) error {
	cmd := strings.ToLower(r.Header.Get("X-Goog-Upload-Command"))
	if cmd != "" && cmd != "start" {
		return core.Invalid("X-Goog-Upload-Command", "a new resumable upload needs X-Goog-Upload-Command: start, not %q", cmd)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		return core.Invalid("body", "the upload metadata is larger than %d bytes", s.cfg.MaxBodyBytes)
	}
	m, err := parseFileMeta(body)
	if err != nil {
		return err
	}
	if v := r.Header.Get("X-Goog-Upload-Header-Content-Type"); v != "" {
		m.MIMEType = v
	}
	if v := r.Header.Get("X-Goog-Upload-Header-Content-Length"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return core.Invalid("X-Goog-Upload-Header-Content-Length", "X-Goog-Upload-Header-Content-Length must be a non-negative integer")
		}
		m.Size = n
	}
	f, err := s.newFile(r.Context(), key.ProjectID, m)
	if err != nil {
		return err
	}
	u := &core.Upload{ID: core.NewID(), ProjectID: key.ProjectID, File: *f, Size: m.Size, CreateTime: f.CreateTime, UpdateTime: f.CreateTime}
	if err := os.WriteFile(s.uploadPath(u.ID), nil, 0o600); err != nil {
		return fmt.Errorf("jobs: upload: %w", err)
	}
	if err := s.store.CreateUpload(r.Context(), u); err != nil {
		_ = os.Remove(s.uploadPath(u.ID))
		return err
	}
	session := s.origin(r) + "/upload/" + versionOf(r.URL.Path) + "/files?upload_id=" + url.QueryEscape(u.ID) + "&upload_protocol=resumable"
	h := w.Header()
	h.Set("X-Goog-Upload-Status", "active")
	h.Set("X-Goog-Upload-URL", session)
	h.Set("X-Goog-Upload-Control-URL", session)
	h.Set("X-Goog-Upload-Chunk-Granularity", "262144")
	api.WriteJSON(w, http.StatusOK, nil)
	return nil
}

// uploadChunk serves the session URL of a resumable upload.
func (s *Service) uploadChunk(w http.ResponseWriter, r *http.Request, id string) {
	ctx := r.Context()
	fail := func(err error) {
		w.Header().Set("X-Goog-Upload-Status", "active")
		s.writeError(w, r, err)
	}
	u, err := s.store.GetUpload(ctx, id)
	if err != nil {
		s.writeError(w, r, orNotFound(err, "The upload session"))
		return
	}
	cmds := map[string]bool{}
	for _, c := range strings.Split(strings.ToLower(r.Header.Get("X-Goog-Upload-Command")), ",") {
		cmds[strings.TrimSpace(c)] = true
	}
	h := w.Header()
	switch {
	case cmds["cancel"]:
		_ = s.store.DeleteUpload(ctx, id)
		_ = os.Remove(s.uploadPath(id))
		h.Set("X-Goog-Upload-Status", "cancelled")
		api.WriteJSON(w, http.StatusOK, nil)
		return
	case cmds["query"]:
		h.Set("X-Goog-Upload-Status", "active")
		h.Set("X-Goog-Upload-Size-Received", strconv.FormatInt(u.Received, 10))
		api.WriteJSON(w, http.StatusOK, nil)
		return
	case !cmds["upload"] && !cmds["finalize"]:
		fail(core.Invalid("X-Goog-Upload-Command", "X-Goog-Upload-Command must be upload, finalize, \"upload, finalize\", query or cancel"))
		return
	}
	received := u.Received
	if cmds["upload"] {
		offset, err := strconv.ParseInt(r.Header.Get("X-Goog-Upload-Offset"), 10, 64)
		if err != nil || offset != u.Received {
			h.Set("X-Goog-Upload-Size-Received", strconv.FormatInt(u.Received, 10))
			fail(core.Invalid("X-Goog-Upload-Offset", "X-Goog-Upload-Offset must be %d, the number of bytes received so far", u.Received))
			return
		}
		n, err := s.appendChunk(w, r, u)
		if err != nil {
			fail(err)
			return
		}
		if err := s.store.AdvanceUpload(ctx, id, offset, offset+n, s.cfg.Clock.Now()); err != nil {
			if errors.Is(err, core.ErrFailedPrecondition) {
				err = preconditionf("another chunk of this upload arrived concurrently; query the session and resume")
			}
			fail(err)
			return
		}
		received = offset + n
	}
	if !cmds["finalize"] {
		h.Set("X-Goog-Upload-Status", "active")
		h.Set("X-Goog-Upload-Size-Received", strconv.FormatInt(received, 10))
		api.WriteJSON(w, http.StatusOK, nil)
		return
	}
	if u.Size >= 0 && received != u.Size {
		fail(core.Invalid("X-Goog-Upload-Command", "cannot finalize: received %d bytes of the declared %d", received, u.Size))
		return
	}
	f := u.File
	f.CreateTime, f.UpdateTime = u.CreateTime, s.cfg.Clock.Now()
	if err := s.commitFile(ctx, &f, s.uploadPath(id), false); err != nil {
		fail(err)
		return
	}
	_ = s.store.DeleteUpload(ctx, id)
	h.Set("X-Goog-Upload-Status", "final")
	h.Set("X-Goog-Upload-Size-Received", strconv.FormatInt(received, 10))
	api.WriteJSON(w, http.StatusOK, map[string]any{"file": renderFile(&f, s.apiBase(r, versionOf(r.URL.Path)))})
}

// appendChunk writes the request body at the session's offset (dropping
// the tail of an earlier chunk that was never acknowledged).
func (s *Service) appendChunk(w http.ResponseWriter, r *http.Request, u *core.Upload) (int64, error) {
	fh, err := os.OpenFile(s.uploadPath(u.ID), os.O_WRONLY, 0)
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
	limit := s.cfg.MaxUploadBytes - u.Received
	n, err := io.Copy(fh, http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return 0, core.Invalid("body", "the file is larger than the limit of %d bytes", s.cfg.MaxUploadBytes)
	}
	if err != nil {
		return 0, fmt.Errorf("jobs: upload chunk: %w", err)
	}
	if u.Size >= 0 && u.Received+n > u.Size {
		return 0, core.Invalid("body", "received more than the declared %d bytes", u.Size)
	}
	return n, nil
}

// multipartUpload stores a multipart/related upload: a JSON metadata part,
// then the media part.
func (s *Service) multipartUpload(w http.ResponseWriter, r *http.Request, key core.APIKey, boundary string) error {
	if boundary == "" {
		return core.Invalid("Content-Type", "a multipart upload needs Content-Type: multipart/related; boundary=...")
	}
	mr := multipart.NewReader(http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes+s.cfg.MaxBodyBytes), boundary)
	metaPart, err := mr.NextPart()
	if err != nil {
		return core.Invalid("body", "the multipart body has no metadata part")
	}
	raw, err := io.ReadAll(io.LimitReader(metaPart, s.cfg.MaxBodyBytes))
	if err != nil {
		return core.Invalid("body", "cannot read the metadata part: %v", err)
	}
	m, err := parseFileMeta(raw)
	if err != nil {
		return err
	}
	media, err := mr.NextPart()
	if err != nil {
		return core.Invalid("body", "the multipart body has no media part")
	}
	if m.MIMEType == "" {
		m.MIMEType = media.Header.Get("Content-Type")
	}
	return s.storeUpload(w, r, key, m, media)
}

// rawUpload stores the request body as the file.
func (s *Service) rawUpload(w http.ResponseWriter, r *http.Request, key core.APIKey) error {
	m := fileMeta{Size: -1,
		MIMEType:    firstNonEmpty(r.Header.Get("X-Goog-Upload-Header-Content-Type"), r.Header.Get("Content-Type")),
		DisplayName: r.Header.Get("X-Goog-Upload-File-Name")}
	return s.storeUpload(w, r, key, m, http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes))
}

// storeUpload writes a one-shot upload and answers {"file": File}.
func (s *Service) storeUpload(w http.ResponseWriter, r *http.Request, key core.APIKey, m fileMeta, body io.Reader) error {
	f, err := s.newFile(r.Context(), key.ProjectID, m)
	if err != nil {
		return err
	}
	tmp := s.tempFile(f.ID)
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("jobs: upload: %w", err)
	}
	_, err = io.Copy(fh, io.LimitReader(body, s.cfg.MaxUploadBytes+1))
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if st, serr := os.Stat(tmp); err == nil && serr == nil && st.Size() > s.cfg.MaxUploadBytes {
		err = core.Invalid("body", "the file is larger than the limit of %d bytes", s.cfg.MaxUploadBytes)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = core.Invalid("body", "the file is larger than the limit of %d bytes", s.cfg.MaxUploadBytes)
	}
	if err == nil {
		err = s.commitFile(r.Context(), f, tmp, false)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"file": renderFile(f, s.apiBase(r, versionOf(r.URL.Path)))})
	return nil
}
