package jobs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
)

// File sources, as the Files API spells them.
const (
	sourceUploaded  = "UPLOADED"
	sourceGenerated = "GENERATED"
)

// fileIDPattern is what a user-chosen file name (files/{id}) may be: the
// Gemini rule (lowercase alphanumerics and dashes, at most 40 characters).
var fileIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

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

// renderFile is the File resource.
func renderFile(f *core.File, base string) map[string]any {
	m := map[string]any{
		"name":        "files/" + f.ID,
		"mimeType":    f.MIMEType,
		"sizeBytes":   strconv.FormatInt(f.SizeBytes, 10),
		"sha256Hash":  base64.StdEncoding.EncodeToString(f.SHA256),
		"uri":         base + "/files/" + f.ID,
		"downloadUri": base + "/files/" + f.ID + ":download?alt=media",
		"state":       "ACTIVE",
		"source":      f.Source,
	}
	if f.DisplayName != "" {
		m["displayName"] = f.DisplayName
	}
	if !f.CreateTime.IsZero() {
		m["createTime"], m["updateTime"] = timestamp(f.CreateTime), timestamp(f.UpdateTime)
	}
	if !f.ExpireTime.IsZero() {
		m["expirationTime"] = timestamp(f.ExpireTime)
	}
	return m
}

func (s *Service) listFiles(r *http.Request, key core.APIKey) (any, error) {
	size, cursor, err := pageParams(r)
	if err != nil {
		return nil, err
	}
	fs, err := s.store.ListFiles(r.Context(), key.ProjectID, cursor, size+1)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if len(fs) > size {
		fs = fs[:size]
		out["nextPageToken"] = nextToken(fs[len(fs)-1].ID)
	}
	if len(fs) > 0 {
		base := s.apiBase(r, versionOf(r.URL.Path))
		list := make([]any, len(fs))
		for i, f := range fs {
			list[i] = renderFile(f, base)
		}
		out["files"] = list
	}
	return out, nil
}

// getOrDownloadFile serves GET /{v}/files/{id} (metadata, or the bytes with
// alt=media) and GET /{v}/files/{id}:download (bytes), the path the SDKs
// download with.
func (s *Service) getOrDownloadFile(w http.ResponseWriter, r *http.Request, key core.APIKey) {
	id, verb, _ := strings.Cut(r.PathValue("id"), ":")
	if verb != "" && verb != "download" {
		s.writeError(w, r, notFoundf("Method %s %s not found.", r.Method, r.URL.Path))
		return
	}
	f, err := s.store.GetFile(r.Context(), key.ProjectID, id)
	if err != nil {
		s.writeError(w, r, orNotFound(err, "File files/"+id))
		return
	}
	if verb == "" && r.URL.Query().Get("alt") != "media" {
		api.WriteJSON(w, http.StatusOK, renderFile(f, s.apiBase(r, versionOf(r.URL.Path))))
		return
	}
	fh, err := s.blobs.Open(r.Context(), key.ProjectID, f.ID)
	if err != nil {
		s.writeError(w, r, orNotFound(err, "The content of files/"+id))
		return
	}
	defer fh.Close()
	extendDeadlines(w)
	w.Header().Set("Content-Type", f.MIMEType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", "attachment")
	http.ServeContent(w, r, "", f.UpdateTime, fh)
}

func (s *Service) deleteFile(r *http.Request, key core.APIKey) (any, error) {
	id := r.PathValue("id")
	if err := s.blobs.DeleteFile(r.Context(), key.ProjectID, id); err != nil {
		return nil, orNotFound(err, "File files/"+id)
	}
	return nil, nil
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

// authedUpload authenticates /upload/{v}/files: a session URL (upload_id)
// is its own credential, as with Google's resumable uploads; every other
// upload needs an API key.
func (s *Service) authedUpload(fn func(http.ResponseWriter, *http.Request, core.APIKey)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("upload_id") != "" {
			fn(w, r, core.APIKey{})
			return
		}
		s.authedDownload(fn).ServeHTTP(w, r)
	})
}

// authedDownload authenticates a route outside the version prefixes with
// the x-goog-api-key header or the key query parameter.
func (s *Service) authedDownload(fn func(http.ResponseWriter, *http.Request, core.APIKey)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := firstNonEmpty(r.Header.Get("x-goog-api-key"), r.URL.Query().Get("key"))
		if raw == "" {
			s.writeError(w, r, &apiError{http.StatusUnauthorized, "UNAUTHENTICATED",
				"Request is missing an API key: pass it in the x-goog-api-key header or the key query parameter."})
			return
		}
		k, err := s.cfg.Keys.LookupAPIKey(r.Context(), api.KeyDigest(raw))
		switch {
		case errors.Is(err, core.ErrNotFound) || err == nil && !k.RevokeTime.IsZero():
			s.writeError(w, r, &apiError{http.StatusUnauthorized, "UNAUTHENTICATED", "API key not valid. Please pass a valid API key."})
		case err != nil:
			s.writeError(w, r, err)
		default:
			fn(w, r, k)
		}
	})
}

// fileMeta is the metadata a client sends with an upload, in either
// spelling, wrapped in {"file": ...} or bare. Output-only fields are
// ignored.
type fileMeta struct {
	ID, DisplayName, MIMEType string
	Size                      int64 // -1: unknown
}

func parseFileMeta(raw []byte) (fileMeta, error) {
	m := fileMeta{Size: -1}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return m, nil
	}
	f, err := decodeFields(raw, "body")
	if err != nil {
		return m, err
	}
	if inner := f.get("file"); inner != nil {
		if f, err = decodeFields(inner, "file"); err != nil {
			return m, err
		}
	}
	var name, size string
	_ = json.Unmarshal(f.get("name"), &name)
	_ = json.Unmarshal(f.get("displayName", "display_name"), &m.DisplayName)
	_ = json.Unmarshal(f.get("mimeType", "mime_type"), &m.MIMEType)
	if v := f.get("sizeBytes", "size_bytes"); v != nil {
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

// newFile prepares the File an upload creates, checking that a chosen id
// is free.
func (s *Service) newFile(ctx context.Context, projectID string, m fileMeta) (*core.File, error) {
	now := s.cfg.Clock.Now()
	f := &core.File{ID: m.ID, ProjectID: projectID, DisplayName: m.DisplayName, MIMEType: m.MIMEType,
		Source: sourceUploaded, CreateTime: now, UpdateTime: now, ExpireTime: now.Add(s.cfg.FileTTL)}
	if f.ID == "" {
		f.ID = core.NewSortableID(now)
	} else if _, err := s.store.GetFile(ctx, "", f.ID); err == nil {
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
