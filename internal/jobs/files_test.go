package jobs_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
)

// send makes a raw request with headers; key "" sends none.
func (f *fixture) send(method, url, key string, header map[string]string, body string) (*http.Response, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("x-goog-api-key", key)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// The resumable protocol's corner cases, multipart and raw uploads, the
// /download path, key checks and project isolation.
func TestFilesREST(t *testing.T) {
	t.Parallel()
	f := setup(t, options{noRunner: true})
	base := f.srv.URL

	// Resumable: start, a chunk at the wrong offset, query, the rest.
	res, _ := f.send("POST", base+"/upload/v1beta/files", f.key, map[string]string{
		"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
		"X-Goog-Upload-Header-Content-Length": "10", "X-Goog-Upload-Header-Content-Type": "text/plain",
	}, `{"file":{"display_name":"ten","name":"files/ten-bytes"}}`)
	session := res.Header.Get("X-Goog-Upload-URL")
	if res.StatusCode != 200 || !strings.Contains(session, "upload_id=") || res.Header.Get("X-Goog-Upload-Status") != "active" {
		t.Fatalf("start: %d %v", res.StatusCode, res.Header)
	}
	up := func(cmd, offset, body string) (*http.Response, string) {
		return f.send("POST", session, "", map[string]string{"X-Goog-Upload-Command": cmd, "X-Goog-Upload-Offset": offset}, body)
	}
	if res, _ := up("upload", "0", "hello"); res.StatusCode != 200 || res.Header.Get("X-Goog-Upload-Size-Received") != "5" {
		t.Fatalf("chunk 1: %d %v", res.StatusCode, res.Header)
	}
	if res, _ := up("upload", "3", "xx"); res.StatusCode != 400 || res.Header.Get("X-Goog-Upload-Size-Received") != "5" {
		t.Fatalf("wrong offset: %d %v", res.StatusCode, res.Header)
	}
	if res, _ := up("query", "", ""); res.Header.Get("X-Goog-Upload-Size-Received") != "5" {
		t.Fatalf("query: %v", res.Header)
	}
	if res, body := up("upload, finalize", "5", "wor"); res.StatusCode != 400 || !strings.Contains(body, "declared 10") {
		t.Fatalf("short finalize: %d %s", res.StatusCode, body)
	}
	res, body := up("upload, finalize", "8", "ld")
	if res.StatusCode != 200 || res.Header.Get("X-Goog-Upload-Status") != "final" || !strings.Contains(body, `"name":"files/ten-bytes"`) || !strings.Contains(body, `"sizeBytes":"10"`) {
		t.Fatalf("finalize: %d %s", res.StatusCode, body)
	}
	if res, body := f.send("GET", base+"/download/v1beta/files/ten-bytes:download?alt=media&key="+f.key, "", nil, ""); res.StatusCode != 200 || body != "hellowor"+"ld" || res.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("download: %d %q", res.StatusCode, body)
	}
	if res, _ := up("query", "", ""); res.StatusCode != 404 {
		t.Fatalf("finished session still answers: %d", res.StatusCode)
	}
	// The name is taken now.
	if res, body := f.send("POST", base+"/upload/v1beta/files", f.key, map[string]string{"X-Goog-Upload-Protocol": "resumable"}, `{"file":{"name":"files/ten-bytes"}}`); res.StatusCode != 400 || !strings.Contains(body, "already exists") {
		t.Fatalf("taken name: %d %s", res.StatusCode, body)
	}
	if res, _ := f.send("POST", base+"/upload/v1beta/files", f.key, map[string]string{"X-Goog-Upload-Protocol": "resumable"}, `{"file":{"name":"files/../etc"}}`); res.StatusCode != 400 {
		t.Fatalf("bad name: %d", res.StatusCode)
	}
	// A cancelled session is gone.
	res, _ = f.send("POST", base+"/upload/v1/files", f.key, map[string]string{"X-Goog-Upload-Protocol": "resumable"}, "")
	session = res.Header.Get("X-Goog-Upload-URL")
	if res, _ := up("cancel", "", ""); res.Header.Get("X-Goog-Upload-Status") != "cancelled" {
		t.Fatalf("cancel: %v", res.Header)
	}
	if res, _ := up("upload", "0", "x"); res.StatusCode != 404 {
		t.Fatalf("upload after cancel: %d", res.StatusCode)
	}

	// Multipart and raw uploads.
	mp := "--b\r\nContent-Type: application/json\r\n\r\n{\"file\":{\"displayName\":\"mp\"}}\r\n--b\r\nContent-Type: image/png\r\n\r\nPNGDATA\r\n--b--\r\n"
	res, body = f.send("POST", base+"/upload/v1beta/files?uploadType=multipart", f.key, map[string]string{"Content-Type": "multipart/related; boundary=b"}, mp)
	if res.StatusCode != 200 || !strings.Contains(body, `"mimeType":"image/png"`) || !strings.Contains(body, `"sizeBytes":"7"`) {
		t.Fatalf("multipart: %d %s", res.StatusCode, body)
	}
	res, body = f.send("POST", base+"/upload/v1beta/files", f.key, map[string]string{"Content-Type": "application/pdf", "X-Goog-Upload-Protocol": "raw"}, "%PDF")
	if res.StatusCode != 200 || !strings.Contains(body, `"mimeType":"application/pdf"`) {
		t.Fatalf("raw: %d %s", res.StatusCode, body)
	}
	if res, _ := f.send("POST", base+"/upload/v1beta/files", "", nil, "x"); res.StatusCode != 401 {
		t.Fatalf("upload without key: %d", res.StatusCode)
	}
	// A protocol the server does not speak is refused, not stored as a
	// raw upload of its framing (and no file is made).
	for _, h := range []map[string]string{{"X-Goog-Upload-Protocol": "chunked"}, {"X-Goog-Upload-Protocol": "resumable2"}} {
		if res, body := f.send("POST", base+"/upload/v1beta/files", f.key, h, "framing"); res.StatusCode != 400 ||
			!strings.Contains(body, "INVALID_ARGUMENT") || !strings.Contains(body, "is not supported") {
			t.Fatalf("upload protocol %v: %d %s", h, res.StatusCode, body)
		}
	}
	if res, body := f.send("POST", base+"/upload/v1beta/files?uploadType=tus", f.key, nil, "framing"); res.StatusCode != 400 || !strings.Contains(body, `upload protocol \"tus\" is not supported`) {
		t.Fatalf("uploadType=tus: %d %s", res.StatusCode, body)
	}

	// List pages through the three files, newest first.
	var names []string
	for token := ""; ; {
		r := f.call("GET", "/v1beta/files?page_size=2&page_token="+token, nil).must(t, 200)
		files, _ := r.path("files").([]any)
		for _, x := range files {
			names = append(names, x.(map[string]any)["name"].(string))
		}
		if token = r.str("nextPageToken"); token == "" {
			break
		}
	}
	if len(names) != 3 {
		t.Fatalf("listed %v", names)
	}

	// Another project sees none of them.
	other := core.NewID()
	ctx := context.Background()
	if err := f.store.CreateProject(ctx, core.Project{ID: other, Name: "o", CreateTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	plain, digest, hint := api.NewAPIKey()
	if err := f.store.CreateAPIKey(ctx, core.APIKey{ID: core.NewID(), ProjectID: other, Digest: digest, Hint: hint, CreateTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if res, _ := f.send("GET", base+"/v1beta/files/ten-bytes", plain, nil, ""); res.StatusCode != 404 {
		t.Fatalf("other project's get: %d", res.StatusCode)
	}
	if res, _ := f.send("GET", base+"/download/v1beta/files/ten-bytes:download?alt=media", plain, nil, ""); res.StatusCode != 404 {
		t.Fatalf("other project's download: %d", res.StatusCode)
	}

	f.call("DELETE", "/v1beta/files/ten-bytes", nil).must(t, 200)
	f.call("GET", "/v1beta/files/ten-bytes", nil).must(t, 404)
	// Expired files are swept.
	if err := f.svc.SweepFiles(ctx, time.Now().Add(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if r := f.call("GET", "/v1beta/files", nil).must(t, 200); r.path("files") != nil {
		t.Fatalf("after the sweep: %s", r.raw)
	}
}

// File names are per project (issue 13, defect 8): two projects upload
// the same name, each reads, lists and deletes its own; another project's
// name is answered exactly as a free one, at upload and as a batch input.
func TestFileNamesPerProject(t *testing.T) {
	t.Parallel()
	f := setup(t, options{noRunner: true})
	base := f.srv.URL
	ctx := context.Background()
	other := core.NewID()
	if err := f.store.CreateProject(ctx, core.Project{ID: other, Name: "c", CreateTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	c, digest, hint := api.NewAPIKey()
	if err := f.store.CreateAPIKey(ctx, core.APIKey{ID: core.NewID(), ProjectID: other, Digest: digest, Hint: hint, CreateTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	d := f.key
	upload := func(key, name, display, data string) (*http.Response, string) {
		mp := "--b\r\nContent-Type: application/json\r\n\r\n{\"file\":{\"name\":\"files/" + name + "\",\"displayName\":\"" + display + "\"}}\r\n" +
			"--b\r\nContent-Type: text/plain\r\n\r\n" + data + "\r\n--b--\r\n"
		return f.send("POST", base+"/upload/v1beta/files?uploadType=multipart", key, map[string]string{"Content-Type": "multipart/related; boundary=b"}, mp)
	}
	batch := func(key, name string) (*http.Response, string) {
		return f.send("POST", base+"/v1beta/models/gemini-2.5-flash:batchGenerateContent", key, map[string]string{"Content-Type": "application/json"},
			`{"batch":{"displayName":"b","inputConfig":{"fileName":"files/`+name+`"}}}`)
	}
	// scrub makes the answers for two names comparable.
	scrub := func(body, name string) string { return strings.ReplaceAll(body, name, "NAME") }

	if res, body := upload(d, "shared", "of-d", "d-bytes"); res.StatusCode != 200 {
		t.Fatalf("D's upload: %d %s", res.StatusCode, body)
	}
	if res, body := upload(c, "shared", "of-c", "c-bytes"); res.StatusCode != 200 || !strings.Contains(body, `"name":"files/shared"`) {
		t.Fatalf("C's upload of D's name: %d %s, want 200 as for a free name", res.StatusCode, body)
	}
	for _, p := range []struct{ key, display, data string }{{d, "of-d", "d-bytes"}, {c, "of-c", "c-bytes"}} {
		if res, body := f.send("GET", base+"/v1beta/files/shared", p.key, nil, ""); res.StatusCode != 200 || !strings.Contains(body, `"displayName":"`+p.display+`"`) {
			t.Fatalf("get as %s: %d %s", p.display, res.StatusCode, body)
		}
		if res, body := f.send("GET", base+"/download/v1beta/files/shared:download?alt=media", p.key, nil, ""); res.StatusCode != 200 || body != p.data {
			t.Fatalf("download as %s: %d %q", p.display, res.StatusCode, body)
		}
		res, body := f.send("GET", base+"/v1beta/files", p.key, nil, "")
		if res.StatusCode != 200 || strings.Count(body, `"name"`) != 1 || !strings.Contains(body, `"displayName":"`+p.display+`"`) {
			t.Fatalf("list as %s: %d %s", p.display, res.StatusCode, body)
		}
	}
	// A name a project holds itself is taken, for it alone.
	if res, body := upload(c, "shared", "again", "x"); res.StatusCode != 400 || !strings.Contains(body, "already exists") {
		t.Fatalf("C's second upload of its own name: %d %s", res.StatusCode, body)
	}
	// Deleting D's file leaves C's.
	if res, body := f.send("DELETE", base+"/v1beta/files/shared", d, nil, ""); res.StatusCode != 200 {
		t.Fatalf("D's delete: %d %s", res.StatusCode, body)
	}
	if res, _ := f.send("GET", base+"/v1beta/files/shared", d, nil, ""); res.StatusCode != 404 {
		t.Fatalf("D's get after its delete: %d", res.StatusCode)
	}
	if res, body := f.send("GET", base+"/download/v1beta/files/shared:download?alt=media", c, nil, ""); res.StatusCode != 200 || body != "c-bytes" {
		t.Fatalf("C's download after D's delete: %d %q", res.StatusCode, body)
	}

	// A batch of C naming D's file finds nothing, as for a free name.
	if res, body := upload(d, "batch-input", "of-d", `{"key":"1","request":{"contents":[{"parts":[{"text":"hi"}]}]}}`); res.StatusCode != 200 {
		t.Fatalf("D's input upload: %d %s", res.StatusCode, body)
	}
	resTaken, bodyTaken := batch(c, "batch-input")
	resFree, bodyFree := batch(c, "never-made")
	if resTaken.StatusCode != 400 || resTaken.StatusCode != resFree.StatusCode || scrub(bodyTaken, "batch-input") != scrub(bodyFree, "never-made") {
		t.Fatalf("C's batch on D's file: %d %s; on a free name: %d %s", resTaken.StatusCode, bodyTaken, resFree.StatusCode, bodyFree)
	}
	// Once C has its own file of that name, the batch reads C's.
	if res, body := upload(c, "batch-input", "of-c", `{"key":"1","request":{"contents":[{"parts":[{"text":"hi"}]}]}}`); res.StatusCode != 200 {
		t.Fatalf("C's input upload: %d %s", res.StatusCode, body)
	}
	if res, body := batch(c, "batch-input"); res.StatusCode != 200 {
		t.Fatalf("C's batch on its own file: %d %s", res.StatusCode, body)
	}
}

// Contents stored before file names were per project (files/{id}) move to
// files/{project}/{id} when the service starts, and are served as before.
func TestLegacyFileContentsMoved(t *testing.T) {
	t.Parallel()
	f := setup(t, options{noRunner: true})
	mp := "--b\r\nContent-Type: application/json\r\n\r\n{\"file\":{\"name\":\"files/old-one\"}}\r\n--b\r\nContent-Type: text/plain\r\n\r\nold bytes\r\n--b--\r\n"
	if res, body := f.send("POST", f.srv.URL+"/upload/v1beta/files?uploadType=multipart", f.key, map[string]string{"Content-Type": "multipart/related; boundary=b"}, mp); res.StatusCode != 200 {
		t.Fatalf("upload: %d %s", res.StatusCode, body)
	}
	f.close()
	// The layout of the previous version.
	files := filepath.Join(f.dir, "jobs", "files")
	if err := os.Rename(filepath.Join(files, f.project, "old-one"), filepath.Join(files, "old-one")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(files, "orphan"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	g := setup(t, options{noRunner: true, dir: f.dir})
	if res, body := g.send("GET", g.srv.URL+"/download/v1beta/files/old-one:download?alt=media", g.key, nil, ""); res.StatusCode != 200 || body != "old bytes" {
		t.Fatalf("download after the move: %d %q", res.StatusCode, body)
	}
	if _, err := os.Stat(filepath.Join(files, "old-one")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("files/old-one still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(files, "orphan")); err != nil {
		t.Errorf("contents without a file were touched: %v", err)
	}
	g.call("DELETE", "/v1beta/files/old-one", nil).must(t, 200)
	if _, err := os.Stat(filepath.Join(files, g.project, "old-one")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("contents kept after delete: %v", err)
	}
}

// A NUL character (\u0000) in an upload's display name or MIME type is
// 400 INVALID_ARGUMENT naming the field, as in every other text field of
// a request: PostgreSQL's text cannot hold one (the upload answered 500
// INTERNAL there) and SQLite stored it. Nothing is stored.
func TestFileMetadataNULRefused(t *testing.T) {
	t.Parallel()
	f := setup(t, options{noRunner: true})
	multipart := func(meta string) (*http.Response, string) {
		mp := "--b\r\nContent-Type: application/json\r\n\r\n" + meta + "\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n"
		return f.send("POST", f.srv.URL+"/upload/v1beta/files?uploadType=multipart", f.key, map[string]string{"Content-Type": "multipart/related; boundary=b"}, mp)
	}
	resumable := func(meta string) (*http.Response, string) {
		return f.send("POST", f.srv.URL+"/upload/v1beta/files", f.key, map[string]string{
			"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start", "X-Goog-Upload-Header-Content-Length": "5",
		}, meta)
	}
	for _, c := range []struct {
		name        string
		upload      func(string) (*http.Response, string)
		meta, field string
	}{
		{"multipart displayName", multipart, `{"file":{"displayName":"a\u0000b"}}`, "file.displayName"},
		{"multipart mimeType", multipart, `{"file":{"mimeType":"text/pl\u0000ain"}}`, "file.mimeType"},
		{"resumable display_name", resumable, `{"file":{"display_name":"\u0000"}}`, "file.displayName"},
		{"resumable mime_type", resumable, `{"mime_type":"text/plain\u0000"}`, "file.mimeType"},
	} {
		res, body := c.upload(c.meta)
		if res.StatusCode != 400 || !strings.Contains(body, "INVALID_ARGUMENT") || !strings.Contains(body, c.field) || !strings.Contains(body, "NUL") {
			t.Errorf("%s: %d %s", c.name, res.StatusCode, body)
		}
	}
	if r := f.call("GET", "/v1beta/files", nil).must(t, 200); strings.TrimSpace(string(r.raw)) != "{}" {
		t.Errorf("refused uploads stored files: %s", r.raw)
	}
}

// A file's bytes are a tenant's, served from the console's origin (and a
// download link may carry its key in ?key=): every download path answers
// as an attachment, nosniff, and under a sandbox CSP, so HTML or SVG a
// browser renders anyway runs no script with the console's cookies.
func TestDownloadIsSandboxed(t *testing.T) {
	t.Parallel()
	f := setup(t, options{noRunner: true})
	base := f.srv.URL
	for _, tc := range []struct{ name, mime, body string }{
		{"page", "text/html", "<script>fetch('/console/admin')</script>"},
		{"drawing", "image/svg+xml", `<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`},
	} {
		res, body := f.send("POST", base+"/upload/v1beta/files", f.key, map[string]string{
			"Content-Type": tc.mime, "X-Goog-Upload-Protocol": "raw"}, tc.body)
		if res.StatusCode != 200 {
			t.Fatalf("upload %s: %d %s", tc.mime, res.StatusCode, body)
		}
		id := strings.TrimPrefix(between(body, `"name":"`, `"`), "files/")
		for _, path := range []string{"/v1beta/files/" + id + "?alt=media", "/v1beta/files/" + id + ":download?alt=media",
			"/download/v1beta/files/" + id + "?alt=media"} {
			res, got := f.send("GET", base+path+"&key="+f.key, "", nil, "")
			h := res.Header
			if res.StatusCode != 200 || got != tc.body || h.Get("Content-Type") != tc.mime {
				t.Fatalf("GET %s: %d %q %v", path, res.StatusCode, got, h)
			}
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "sandbox") || !strings.Contains(csp, "default-src 'none'") ||
				h.Get("Content-Disposition") != "attachment" || h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("GET %s (%s): Content-Security-Policy %q, Content-Disposition %q, X-Content-Type-Options %q; want a sandbox that loads nothing, attachment, nosniff",
					path, tc.mime, csp, h.Get("Content-Disposition"), h.Get("X-Content-Type-Options"))
			}
		}
	}
}

// TestDownloadIsNotStored: a file's bytes are answered with
// Cache-Control: no-store on every download path, as every JSON answer of
// the API is. One URL serves different bytes to different keys (file
// names are per project: files/shared of two projects) and the key may
// travel in a header no cache keys on, while the answer carries a
// Last-Modified — enough for a shared cache (a proxy or CDN in front of
// serve) to store it heuristically and serve one project's file, to
// anyone asking that URL, without a key.
func TestDownloadIsNotStored(t *testing.T) {
	t.Parallel()
	f := setup(t, options{noRunner: true})
	base := f.srv.URL
	other := core.NewID()
	if err := f.store.CreateProject(context.Background(), core.Project{ID: other, Name: "c", CreateTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	c, digest, hint := api.NewAPIKey()
	if err := f.store.CreateAPIKey(context.Background(), core.APIKey{ID: core.NewID(), ProjectID: other, Digest: digest, Hint: hint, CreateTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ key, data string }{{f.key, "d-bytes"}, {c, "c-bytes"}} {
		mp := "--b\r\nContent-Type: application/json\r\n\r\n{\"file\":{\"name\":\"files/shared\"}}\r\n" +
			"--b\r\nContent-Type: text/plain\r\n\r\n" + p.data + "\r\n--b--\r\n"
		if res, body := f.send("POST", base+"/upload/v1beta/files?uploadType=multipart", p.key, map[string]string{"Content-Type": "multipart/related; boundary=b"}, mp); res.StatusCode != 200 {
			t.Fatalf("upload: %d %s", res.StatusCode, body)
		}
		for _, path := range []string{"/v1beta/files/shared?alt=media", "/v1beta/files/shared:download?alt=media",
			"/download/v1beta/files/shared?alt=media"} {
			res, got := f.send("GET", base+path, p.key, nil, "")
			if res.StatusCode != 200 || got != p.data {
				t.Fatalf("GET %s: %d %q, want %q", path, res.StatusCode, got, p.data)
			}
			if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("GET %s: Cache-Control %q (Last-Modified %q), want no-store: a shared cache may keep one project's bytes for this URL",
					path, cc, res.Header.Get("Last-Modified"))
			}
		}
	}
}

// between returns the text of s after the first open up to the next close.
func between(s, open, close string) string {
	_, rest, _ := strings.Cut(s, open)
	v, _, _ := strings.Cut(rest, close)
	return v
}
