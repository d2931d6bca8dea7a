package jobs_test

import (
	"context"
	"io"
	"net/http"
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
