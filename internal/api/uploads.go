package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs"
)

// fileIDPattern is what a user-chosen file name (files/{id}) may be: the
// Gemini rule (lowercase alphanumerics and dashes, at most 40 characters).
var fileIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// upload serves POST|PUT /upload/{v}/files: Google's resumable protocol
// (X-Goog-Upload-Protocol: resumable, start → upload/finalize on the
// session URL, also query and cancel), a multipart/related upload (JSON
// metadata part, then the media part) and a raw upload (the body is the
// file; metadata from headers). ServeHTTP has authenticated every request
// but those to a session URL, whose upload_id is its own credential.
func (s *server) upload(w http.ResponseWriter, r *http.Request) {
	if id := r.URL.Query().Get("upload_id"); id != "" {
		s.uploadChunk(w, r, id) // extends the deadlines once the session is known
		return
	}
	extendDeadlines(w) // the caller's key was checked by ServeHTTP
	key, _ := KeyFromContext(r.Context())
	protocol := strings.ToLower(firstNonEmpty(r.Header.Get("X-Goog-Upload-Protocol"), r.URL.Query().Get("uploadType")))
	mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var err error
	switch {
	case protocol == "resumable":
		err = s.startUpload(w, r, key)
	case protocol != "" && protocol != "multipart" && protocol != "raw" && protocol != "media":
		// Read as a raw upload, a protocol this server does not speak
		// would store the protocol's own framing as the file.
		err = core.Invalid("X-Goog-Upload-Protocol", "upload protocol %q is not supported; use resumable, multipart or raw (uploadType resumable, multipart or media)", protocol)
	case protocol == "multipart" || strings.HasPrefix(mediaType, "multipart/"):
		err = s.multipartUpload(w, r, key, params["boundary"])
	default:
		err = s.rawUpload(w, r, key)
	}
	if err != nil {
		WriteError(w, r, s.d.Logger, err)
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

// tooLarge turns a body over its http.MaxBytesReader limit into
// INVALID_ARGUMENT naming the file size limit.
func (s *server) tooLarge(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return core.Invalid("body", "the file is larger than the limit of %d bytes", s.d.Jobs.MaxUploadBytes())
	}
	return err
}

func (s *server) startUpload(w http.ResponseWriter, r *http.Request, key core.APIKey) error {
	cmd := strings.ToLower(r.Header.Get("X-Goog-Upload-Command"))
	if cmd != "" && cmd != "start" {
		return core.Invalid("X-Goog-Upload-Command", "a new resumable upload needs X-Goog-Upload-Command: start, not %q", cmd)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.d.MaxBodyBytes))
	if err != nil {
		return core.Invalid("body", "the upload metadata is larger than %d bytes", s.d.MaxBodyBytes)
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
	u, err := s.d.Jobs.StartUpload(r.Context(), key.ProjectID, m)
	if err != nil {
		return err
	}
	session := s.origin(r) + "/upload/" + versionOf(r.URL.Path) + "/files?upload_id=" + url.QueryEscape(u.ID) + "&upload_protocol=resumable"
	h := w.Header()
	h.Set("X-Goog-Upload-Status", "active")
	h.Set("X-Goog-Upload-URL", session)
	h.Set("X-Goog-Upload-Control-URL", session)
	h.Set("X-Goog-Upload-Chunk-Granularity", "262144")
	WriteJSON(w, http.StatusOK, nil)
	return nil
}

// uploadChunk serves the session URL of a resumable upload.
func (s *server) uploadChunk(w http.ResponseWriter, r *http.Request, id string) {
	ctx := r.Context()
	fail := func(err error) {
		w.Header().Set("X-Goog-Upload-Status", "active")
		WriteError(w, r, s.d.Logger, err)
	}
	u, err := s.d.Jobs.Upload(ctx, id)
	if err != nil {
		WriteError(w, r, s.d.Logger, err)
		return
	}
	// Only a live session may hold the connection for a file's bytes: an
	// unknown upload_id keeps the server's ordinary timeouts.
	extendDeadlines(w)
	cmds := map[string]bool{}
	for _, c := range strings.Split(strings.ToLower(r.Header.Get("X-Goog-Upload-Command")), ",") {
		cmds[strings.TrimSpace(c)] = true
	}
	h := w.Header()
	switch {
	case cmds["cancel"]:
		_ = s.d.Jobs.CancelUpload(ctx, id)
		h.Set("X-Goog-Upload-Status", "cancelled")
		WriteJSON(w, http.StatusOK, nil)
		return
	case cmds["query"]:
		h.Set("X-Goog-Upload-Status", "active")
		h.Set("X-Goog-Upload-Size-Received", strconv.FormatInt(u.Received, 10))
		WriteJSON(w, http.StatusOK, nil)
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
		body := http.MaxBytesReader(w, r.Body, s.d.Jobs.MaxUploadBytes()-u.Received)
		n, err := s.d.Jobs.AppendUpload(ctx, u, body)
		if err != nil {
			fail(s.tooLarge(err))
			return
		}
		received = offset + n
	}
	if !cmds["finalize"] {
		h.Set("X-Goog-Upload-Status", "active")
		h.Set("X-Goog-Upload-Size-Received", strconv.FormatInt(received, 10))
		WriteJSON(w, http.StatusOK, nil)
		return
	}
	f, err := s.d.Jobs.FinishUpload(ctx, u, received)
	if err != nil {
		fail(err)
		return
	}
	h.Set("X-Goog-Upload-Status", "final")
	h.Set("X-Goog-Upload-Size-Received", strconv.FormatInt(received, 10))
	WriteJSON(w, http.StatusOK, map[string]any{"file": renderFile(f, s.apiBase(r))})
}

// multipartUpload stores a multipart/related upload: a JSON metadata part,
// then the media part.
func (s *server) multipartUpload(w http.ResponseWriter, r *http.Request, key core.APIKey, boundary string) error {
	if boundary == "" {
		return core.Invalid("Content-Type", "a multipart upload needs Content-Type: multipart/related; boundary=...")
	}
	mr := multipart.NewReader(http.MaxBytesReader(w, r.Body, s.d.Jobs.MaxUploadBytes()+s.d.MaxBodyBytes), boundary)
	metaPart, err := mr.NextPart()
	if err != nil {
		return core.Invalid("body", "the multipart body has no metadata part")
	}
	raw, err := io.ReadAll(io.LimitReader(metaPart, s.d.MaxBodyBytes))
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
func (s *server) rawUpload(w http.ResponseWriter, r *http.Request, key core.APIKey) error {
	m := jobs.FileMeta{Size: -1,
		MIMEType:    firstNonEmpty(r.Header.Get("X-Goog-Upload-Header-Content-Type"), r.Header.Get("Content-Type")),
		DisplayName: r.Header.Get("X-Goog-Upload-File-Name")}
	return s.storeUpload(w, r, key, m, http.MaxBytesReader(w, r.Body, s.d.Jobs.MaxUploadBytes()))
}

// storeUpload writes a one-shot upload and answers {"file": File}.
func (s *server) storeUpload(w http.ResponseWriter, r *http.Request, key core.APIKey, m jobs.FileMeta, body io.Reader) error {
	f, err := s.d.Jobs.CreateUploadedFile(r.Context(), key.ProjectID, m, body)
	if err != nil {
		return s.tooLarge(err)
	}
	WriteJSON(w, http.StatusOK, map[string]any{"file": renderFile(f, s.apiBase(r))})
	return nil
}

// parseFileMeta reads the metadata a client sends with an upload, in
// either spelling (lowerCamel or snake_case), wrapped in {"file": ...} or
// bare. Output-only and mistyped optional fields are ignored.
func parseFileMeta(raw []byte) (jobs.FileMeta, error) {
	m := jobs.FileMeta{Size: -1}
	if len(bytes.TrimSpace(raw)) == 0 {
		return m, nil
	}
	f, err := jsonObject(raw, "body")
	if err != nil {
		return m, err
	}
	if inner := pick(f, "file"); inner != nil {
		if f, err = jsonObject(inner, "file"); err != nil {
			return m, err
		}
	}
	var name, size string
	_ = json.Unmarshal(pick(f, "name"), &name)
	_ = json.Unmarshal(pick(f, "displayName", "display_name"), &m.DisplayName)
	_ = json.Unmarshal(pick(f, "mimeType", "mime_type"), &m.MIMEType)
	// Text stored as the store's text, which on PostgreSQL cannot hold a
	// NUL (a 500 there): refused as in every other text field (strictjson.go).
	for field, v := range map[string]string{"file.displayName": m.DisplayName, "file.mimeType": m.MIMEType} {
		if strings.ContainsRune(v, 0) {
			return m, core.Invalid(field, "%s must not contain a NUL character (\u0000)", field)
		}
	}
	if v := pick(f, "sizeBytes", "size_bytes"); v != nil {
		if json.Unmarshal(v, &size) != nil {
			size = string(v)
		}
		n, err := strconv.ParseInt(size, 10, 64)
		if err != nil || n < 0 {
			return m, core.Invalid("file.sizeBytes", "file.sizeBytes must be a non-negative integer")
		}
		m.Size = n
	}
	if name != "" {
		m.ID = strings.TrimPrefix(name, "files/")
		if !fileIDPattern.MatchString(m.ID) {
			return m, core.Invalid("file.name", "file.name %q must be files/ followed by 1 to 40 lowercase letters, digits or dashes (not starting or ending with a dash)", name)
		}
	}
	return m, nil
}

// jsonObject decodes raw as a JSON object whose values are kept raw.
func jsonObject(raw []byte, what string) (map[string]json.RawMessage, error) {
	var f map[string]json.RawMessage
	if err := json.Unmarshal(raw, &f); err != nil || f == nil {
		return nil, core.Invalid(what, "%s must be a JSON object", what)
	}
	return f, nil
}

// pick returns the value of the first of names present and not null in f.
func pick(f map[string]json.RawMessage, names ...string) json.RawMessage {
	for _, n := range names {
		if v, ok := f[n]; ok && string(v) != "null" {
			return v
		}
	}
	return nil
}
