package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/pgtest"
)

// TestJobFilesAcrossInstances: two `serve` instances on one PostgreSQL
// database, each with its own data dir, share job files. A resumable
// upload started on A and finished on B downloads identically from B; a
// batch whose input file went to A, created on A and interrupted there by
// a graceful stop, is finished by B from the database alone, and its
// results download from B.
func TestJobFilesAcrossInstances(t *testing.T) {
	t.Parallel()
	dbURL := newTestDatabase(t, pgtest.URL(t))
	procs := startCluster(t, 2, dbURL, "--sim-duration", "batch=5s")
	a, b := procs[0], procs[1]
	hc := newHTTPClient(t, time.Minute)
	send := func(p *serveProc, method, url string, header map[string]string, body []byte) (*http.Response, []byte) {
		t.Helper()
		if strings.HasPrefix(url, "/") {
			url = p.URL() + url
		}
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("x-goog-api-key", p.APIKey)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		return res, raw
	}

	data := make([]byte, 3<<20+777)
	_, _ = rand.Read(data)
	res, raw := send(a, "POST", "/upload/v1beta/files", map[string]string{
		"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
		"X-Goog-Upload-Header-Content-Length": strconv.Itoa(len(data)),
	}, []byte(`{"file":{"name":"files/shared-upload"}}`))
	session := res.Header.Get("X-Goog-Upload-URL")
	if res.StatusCode != 200 || session == "" {
		t.Fatalf("start on A: %d %s", res.StatusCode, raw)
	}
	path := strings.TrimPrefix(session, a.URL())
	const half = 3 << 19
	if res, raw := send(a, "POST", path, map[string]string{"X-Goog-Upload-Command": "upload", "X-Goog-Upload-Offset": "0"}, data[:half]); res.StatusCode != 200 {
		t.Fatalf("chunk on A: %d %s", res.StatusCode, raw)
	}
	res, raw = send(b, "POST", path, map[string]string{"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": strconv.Itoa(half)}, data[half:])
	if res.StatusCode != 200 || res.Header.Get("X-Goog-Upload-Status") != "final" {
		t.Fatalf("last chunk and finalize on B: %d %s", res.StatusCode, raw)
	}
	if res, got := send(b, "GET", "/download/v1beta/files/shared-upload:download?alt=media", nil, nil); res.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("download from B: %d, %d bytes, identical %v", res.StatusCode, len(got), bytes.Equal(got, data))
	}

	var input bytes.Buffer
	for i := range 3 {
		fmt.Fprintf(&input, `{"key":"k%d","request":{"contents":[{"parts":[{"text":"question %d"}]}]}}`+"\n", i, i)
	}
	if res, raw := send(a, "POST", "/upload/v1beta/files", map[string]string{"Content-Type": "application/jsonl",
		"X-Goog-Upload-File-Name": "input"}, input.Bytes()); res.StatusCode != 200 {
		t.Fatalf("input upload on A: %d %s", res.StatusCode, raw)
	}
	var inputName struct {
		Files []struct {
			Name        string `json:"name"`
			DisplayName string `json:"displayName"`
		} `json:"files"`
	}
	a.client(t).call(t, "GET", "/v1beta/files", nil, &inputName)
	fileName := ""
	for _, f := range inputName.Files {
		if f.DisplayName == "input" {
			fileName = f.Name
		}
	}
	var op struct {
		Name     string `json:"name"`
		Done     bool   `json:"done"`
		Metadata struct {
			State  string `json:"state"`
			Output struct {
				ResponsesFile string `json:"responsesFile"`
			} `json:"output"`
		} `json:"metadata"`
	}
	a.client(t).call(t, "POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent",
		map[string]any{"batch": map[string]any{"inputConfig": map[string]any{"fileName": fileName}}}, &op)
	cb := b.client(t)
	pollUntil(t, 30*time.Second, 20*time.Millisecond, "the batch runs", func() (bool, string) {
		cb.call(t, "GET", "/v1beta/"+op.Name, nil, &op)
		return op.Metadata.State != "BATCH_STATE_PENDING", op.Metadata.State
	})
	if op.Done {
		t.Fatalf("the batch finished before A stopped (%s): raise --sim-duration", op.Metadata.State)
	}
	// A releases the batch on its way out; only B is left to finish it.
	stopGracefully(t, a)
	pollUntil(t, 60*time.Second, 50*time.Millisecond, "B finishes the batch", func() (bool, string) {
		cb.call(t, "GET", "/v1beta/"+op.Name, nil, &op)
		return op.Done, op.Metadata.State
	})
	if op.Metadata.State != "BATCH_STATE_SUCCEEDED" {
		t.Fatalf("batch: %+v", op)
	}
	res, got := send(b, "GET", "/download/v1beta/"+op.Metadata.Output.ResponsesFile+":download?alt=media", nil, nil)
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	if res.StatusCode != 200 || len(lines) != 3 || !strings.Contains(lines[1], "question 1") {
		t.Fatalf("results from B: %d %s", res.StatusCode, got)
	}
}
