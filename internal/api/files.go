package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/longhook/longhook/internal/core"
)

// The Files API (docs/contract.md §11): metadata under /{v}/files, bytes through
// /{v}/files/{id}:download (or ?alt=media) and /download/{v}/files/{id},
// uploads through /upload/{v}/files (uploads.go).

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
		m["createTime"], m["updateTime"] = protoTime(f.CreateTime), protoTime(f.UpdateTime)
	}
	if !f.ExpireTime.IsZero() {
		m["expirationTime"] = protoTime(f.ExpireTime)
	}
	return m
}

func (s *server) listFiles(r *http.Request, key core.APIKey) (any, error) {
	size, cursor, err := s.tokens.page(r.URL.Query(), "files", key.ProjectID)
	if err != nil {
		return nil, err
	}
	fs, err := s.d.Jobs.Files(r.Context(), key.ProjectID, cursor, size+1)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	fs, more := trimPage(fs, size)
	if more {
		out["nextPageToken"] = s.tokens.encode("files", key.ProjectID, fs[len(fs)-1].ID)
	}
	if len(fs) > 0 {
		base := s.apiBase(r)
		list := make([]any, len(fs))
		for i, f := range fs {
			list[i] = renderFile(f, base)
		}
		out["files"] = list
	}
	return out, nil
}

func (s *server) deleteFile(r *http.Request, key core.APIKey) (any, error) {
	return nil, s.d.Jobs.DeleteFile(r.Context(), key.ProjectID, r.PathValue("id"))
}

// downloadCSP is the Content-Security-Policy of a file's bytes: a unique
// opaque origin (sandbox) that may load nothing.
const downloadCSP = "sandbox; default-src 'none'"

// getOrDownloadFile serves GET /{v}/files/{id} (metadata, or the bytes with
// alt=media), GET /{v}/files/{id}:download (bytes, the path the SDKs
// download with) and GET /download/{v}/files/{id}.
func (s *server) getOrDownloadFile(w http.ResponseWriter, r *http.Request) {
	key, _ := KeyFromContext(r.Context()) // ServeHTTP authenticated the caller
	id, verb, _ := strings.Cut(r.PathValue("id"), ":")
	if verb != "" && verb != "download" {
		s.notFound(w, r)
		return
	}
	f, err := s.d.Jobs.File(r.Context(), key.ProjectID, id)
	if err != nil {
		WriteError(w, r, s.d.Logger, err)
		return
	}
	if verb == "" && r.URL.Query().Get("alt") != "media" {
		WriteJSON(w, http.StatusOK, renderFile(f, s.apiBase(r)))
		return
	}
	fh, err := s.d.Jobs.OpenFile(r.Context(), key.ProjectID, f.ID)
	if err != nil {
		WriteError(w, r, s.d.Logger, err)
		return
	}
	defer fh.Close()
	extendDeadlines(w)
	w.Header().Set("Content-Type", f.MIMEType)
	// A file's bytes and type are a tenant's, served from the console's
	// origin: attachment makes browsers save it, and should one render it
	// anyway (HTML, SVG) the sandbox runs no script with the origin's
	// cookies or storage.
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", "attachment")
	w.Header().Set("Content-Security-Policy", downloadCSP)
	// Never stored, as no answer of the API is (codec.go): one URL serves
	// each project its own file of that name, the key may come in a
	// header no cache keys on, and ServeContent's Last-Modified alone lets
	// a shared cache keep the bytes and hand them to anyone without a key.
	w.Header()["Cache-Control"] = noStore
	http.ServeContent(w, r, "", f.UpdateTime, fh)
}
