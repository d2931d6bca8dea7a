package jobs

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
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
	if err := s.blobs.StartUpload(r.Context(), u); err != nil {
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
		_ = s.blobs.DeleteUpload(ctx, id)
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
		if errors.Is(err, core.ErrFailedPrecondition) {
			err = preconditionf("another chunk of this upload arrived concurrently; query the session and resume")
		}
		if err != nil {
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
	u.Received = received
	if err := s.blobs.FinishUpload(ctx, u, &f); err != nil {
		switch {
		case errors.Is(err, core.ErrAlreadyExists):
			err = core.Invalid("file.name", "files/%s already exists", f.ID)
		case errors.Is(err, core.ErrFailedPrecondition):
			err = preconditionf("another chunk of this upload arrived concurrently; query the session and resume")
		}
		fail(err)
		return
	}
	h.Set("X-Goog-Upload-Status", "final")
	h.Set("X-Goog-Upload-Size-Received", strconv.FormatInt(received, 10))
	api.WriteJSON(w, http.StatusOK, map[string]any{"file": renderFile(&f, s.apiBase(r, versionOf(r.URL.Path)))})
}

// appendChunk appends the request body to the session, within the file
// size limit and the declared size.
func (s *Service) appendChunk(w http.ResponseWriter, r *http.Request, u *core.Upload) (int64, error) {
	var body io.Reader = http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes-u.Received)
	if u.Size >= 0 {
		body = &capReader{r: body, left: u.Size - u.Received, err: errBeyondDeclared}
	}
	n, err := s.blobs.AppendUpload(r.Context(), u, body)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return 0, core.Invalid("body", "the file is larger than the limit of %d bytes", s.cfg.MaxUploadBytes)
	case errors.Is(err, errBeyondDeclared):
		return 0, core.Invalid("body", "received more than the declared %d bytes", u.Size)
	case err != nil:
		return 0, fmt.Errorf("jobs: upload chunk: %w", err)
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
	err = s.createFile(r.Context(), f, &capReader{r: body, left: s.cfg.MaxUploadBytes, err: errFileTooLarge}, false)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || errors.Is(err, errFileTooLarge) {
		err = core.Invalid("body", "the file is larger than the limit of %d bytes", s.cfg.MaxUploadBytes)
	}
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"file": renderFile(f, s.apiBase(r, versionOf(r.URL.Path)))})
	return nil
}
