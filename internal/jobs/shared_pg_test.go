package jobs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs"
	"github.com/longhook/longhook/internal/jobs/executor"
	"github.com/longhook/longhook/internal/publish"
	"github.com/longhook/longhook/internal/secretbox"
	"github.com/longhook/longhook/internal/store/postgres"
)

// instance is one process of a cluster: its own store connection pool,
// jobs service, data dir and HTTP server.
type instance struct {
	t   *testing.T
	db  jobs.PGDB
	st  *postgres.Store
	srv *httptest.Server
	svc *jobs.Service
	key string
}

// newInstance starts an instance on db; with runner it also executes jobs.
func newInstance(t *testing.T, db jobs.PGDB, runner bool) *instance {
	t.Helper()
	st := jobs.NewPGStore(t, db)
	box, err := secretbox.New(bytes.Repeat([]byte{7}, secretbox.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	cat, _ := core.NewCatalog()
	policy := core.AddressPolicy{Dev: true}
	pub := publish.New(publish.Config{Store: st, Catalog: cat, Policy: policy})
	svc, err := jobs.New(jobs.Config{Store: st, Publisher: pub, Dir: t.TempDir(), Policy: policy,
		Logger: testLogger(), PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{t: t, db: db, st: st, svc: svc}
	in.srv = httptest.NewServer(api.NewServer(api.Deps{Store: st, Cipher: box, Publisher: pub, Catalog: cat,
		Policy: policy, Jobs: svc, Logger: testLogger()}))
	t.Cleanup(in.srv.Close)
	if runner {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := svc.Run(ctx); err != nil {
				t.Errorf("runner: %v", err)
			}
		}()
		t.Cleanup(func() { cancel(); <-done })
	}
	return in
}

// do sends a request with the instance's key and returns the answer.
func (in *instance) do(method, url string, header map[string]string, body []byte) (*http.Response, []byte) {
	in.t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		in.t.Fatal(err)
	}
	req.Header.Set("x-goog-api-key", in.key)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := in.srv.Client().Do(req)
	if err != nil {
		in.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		in.t.Fatalf("%s %s: %v", method, url, err)
	}
	return res, raw
}

// json sends a request to a path of the instance and decodes the answer,
// which must have status want.
func (in *instance) json(method, path string, body any, want int) map[string]any {
	in.t.Helper()
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	res, got := in.do(method, in.srv.URL+path, map[string]string{"Content-Type": "application/json"}, raw)
	if res.StatusCode != want {
		in.t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.StatusCode, want, got)
	}
	var out map[string]any
	_ = json.Unmarshal(got, &out)
	return out
}

// download fetches a file's bytes through the instance.
func (in *instance) download(id string, header map[string]string) (*http.Response, []byte) {
	in.t.Helper()
	return in.do("GET", in.srv.URL+"/download/v1beta/files/"+id+":download?alt=media", header, nil)
}

// sharedCluster starts two instances on one fresh schema, with a project
// and a key both accept; only b runs jobs.
func sharedCluster(t *testing.T) (a, b *instance) {
	t.Helper()
	db := jobs.PGSchema(t)
	a, b = newInstance(t, db, false), newInstance(t, db, true)
	ctx := context.Background()
	project := core.Project{ID: core.NewID(), Name: "p", CreateTime: time.Now()}
	if err := a.st.CreateProject(ctx, project); err != nil {
		t.Fatal(err)
	}
	key, digest, hint := api.NewAPIKey()
	if err := a.st.CreateAPIKey(ctx, core.APIKey{ID: core.NewID(), ProjectID: project.ID, Digest: digest, Hint: hint, CreateTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	a.key, b.key = key, key
	return a, b
}

// TestFilesAcrossInstances: on PostgreSQL, a file uploaded through one
// instance downloads through another, byte for byte, however its upload was
// spread over the instances.
func TestFilesAcrossInstances(t *testing.T) {
	t.Parallel()
	a, b := sharedCluster(t)
	data := jobs.RandomBytes(5<<19+12345, 42) // 2.5 MiB and a bit: several stored chunks
	sum := sha256.Sum256(data)

	// A resumable upload started on A, its chunks sent alternately to A
	// and B (a load balancer in front of both), finalized on B.
	res, raw := a.do("POST", a.srv.URL+"/upload/v1beta/files", map[string]string{
		"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
		"X-Goog-Upload-Header-Content-Length": strconv.Itoa(len(data)), "X-Goog-Upload-Header-Content-Type": "video/mp4",
	}, []byte(`{"file":{"display_name":"shared"}}`))
	sessionA := res.Header.Get("X-Goog-Upload-URL")
	if res.StatusCode != 200 || !strings.HasPrefix(sessionA, a.srv.URL) {
		t.Fatalf("start: %d %s %v", res.StatusCode, raw, res.Header)
	}
	sessionB := b.srv.URL + strings.TrimPrefix(sessionA, a.srv.URL)
	chunk := func(in *instance, session, cmd string, from, to int) *http.Response {
		t.Helper()
		res, raw := in.do("POST", session, map[string]string{"X-Goog-Upload-Command": cmd, "X-Goog-Upload-Offset": strconv.Itoa(from)}, data[from:to])
		if res.StatusCode != 200 || res.Header.Get("X-Goog-Upload-Size-Received") != strconv.Itoa(to) {
			t.Fatalf("%s [%d, %d) on %s: %d %s %v", cmd, from, to, in.srv.URL, res.StatusCode, raw, res.Header)
		}
		return res
	}
	const mib = 1 << 20
	chunk(a, sessionA, "upload", 0, mib)
	chunk(b, sessionB, "upload", mib, 2*mib+100)
	// A knows what B received: a chunk at a stale offset is refused there.
	if res, _ := a.do("POST", sessionA, map[string]string{"X-Goog-Upload-Command": "upload", "X-Goog-Upload-Offset": strconv.Itoa(mib)}, data[mib:2*mib]); res.StatusCode != 400 || res.Header.Get("X-Goog-Upload-Size-Received") != strconv.Itoa(2*mib+100) {
		t.Fatalf("stale chunk on A: %d %v", res.StatusCode, res.Header)
	}
	chunk(a, sessionA, "upload", 2*mib+100, len(data)-10)
	res = chunk(b, sessionB, "upload, finalize", len(data)-10, len(data))
	if res.Header.Get("X-Goog-Upload-Status") != "final" {
		t.Fatalf("finalize: %v", res.Header)
	}
	meta := a.json("GET", "/v1beta/files", nil, 200)["files"].([]any)[0].(map[string]any)
	id := strings.TrimPrefix(meta["name"].(string), "files/")
	if meta["sizeBytes"] != strconv.Itoa(len(data)) || meta["sha256Hash"] != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("file metadata: %v", meta)
	}
	for _, in := range []*instance{b, a} {
		res, got := in.download(id, nil)
		if res.StatusCode != 200 || !bytes.Equal(got, data) || res.Header.Get("Content-Type") != "video/mp4" {
			t.Fatalf("download through %s: %d, %d bytes, identical %v", in.srv.URL, res.StatusCode, len(got), bytes.Equal(got, data))
		}
	}
	// A range across a stored chunk boundary.
	res, got := b.download(id, map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", mib-5, mib+4)})
	if res.StatusCode != http.StatusPartialContent || !bytes.Equal(got, data[mib-5:mib+5]) {
		t.Fatalf("range: %d %x", res.StatusCode, got)
	}

	// One-shot uploads: multipart through B, raw through A, each
	// downloaded through the other.
	mp := "--b\r\nContent-Type: application/json\r\n\r\n{\"file\":{\"displayName\":\"mp\"}}\r\n--b\r\nContent-Type: image/png\r\n\r\n" + string(data[:1000]) + "\r\n--b--\r\n"
	res, raw = b.do("POST", b.srv.URL+"/upload/v1beta/files?uploadType=multipart", map[string]string{"Content-Type": "multipart/related; boundary=b"}, []byte(mp))
	if res.StatusCode != 200 {
		t.Fatalf("multipart: %d %s", res.StatusCode, raw)
	}
	if res, got := a.download(fileID(t, raw), nil); res.StatusCode != 200 || !bytes.Equal(got, data[:1000]) {
		t.Fatalf("multipart download through A: %d", res.StatusCode)
	}
	res, raw = a.do("POST", a.srv.URL+"/upload/v1beta/files", map[string]string{"Content-Type": "application/pdf"}, data[:mib+1])
	if res.StatusCode != 200 {
		t.Fatalf("raw: %d %s", res.StatusCode, raw)
	}
	if res, got := b.download(fileID(t, raw), nil); res.StatusCode != 200 || !bytes.Equal(got, data[:mib+1]) {
		t.Fatalf("raw download through B: %d", res.StatusCode)
	}

	// Deleted through B: gone through A.
	b.json("DELETE", "/v1beta/files/"+id, nil, 200)
	if res, _ := a.download(id, nil); res.StatusCode != 404 {
		t.Fatalf("download through A after delete through B: %d", res.StatusCode)
	}

	// Once everything expired, the sweep leaves no bytes behind: not of
	// the files, not of an upload abandoned after a chunk, not of a chunk
	// whose writer crashed.
	res, _ = a.do("POST", a.srv.URL+"/upload/v1beta/files", map[string]string{"X-Goog-Upload-Protocol": "resumable"}, []byte(`{}`))
	abandoned := res.Header.Get("X-Goog-Upload-URL")
	if res, raw := b.do("POST", b.srv.URL+strings.TrimPrefix(abandoned, a.srv.URL), map[string]string{"X-Goog-Upload-Command": "upload", "X-Goog-Upload-Offset": "0"}, data[:mib+1]); res.StatusCode != 200 {
		t.Fatalf("chunk of the abandoned upload: %d %s", res.StatusCode, raw)
	}
	ctx := context.Background()
	if _, _, err := a.st.WriteBlob(ctx, bytes.NewReader(data[:10]), time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := a.count("job_blobs"); n == 0 {
		t.Fatal("no stored bytes before the sweep")
	}
	if err := b.svc.SweepFiles(ctx, time.Now().Add(72*time.Hour)); err != nil {
		t.Fatalf("SweepFiles: %v", err)
	}
	for _, table := range []string{"job_blobs", "files", "uploads"} {
		if n := a.count(table); n != 0 {
			t.Errorf("%d rows left in %s after the sweep", n, table)
		}
	}
}

// count returns the number of rows of a table of the instance's schema.
func (in *instance) count(table string) int {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, in.db.URL)
	if err != nil {
		in.t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{in.db.Schema, table}.Sanitize()).Scan(&n); err != nil {
		in.t.Fatal(err)
	}
	return n
}

// fileID returns the id of the file an upload answered.
func fileID(t *testing.T, raw []byte) string {
	t.Helper()
	var r struct {
		File struct {
			Name string `json:"name"`
		} `json:"file"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.File.Name == "" {
		t.Fatalf("upload answer %s: %v", raw, err)
	}
	return strings.TrimPrefix(r.File.Name, "files/")
}

// TestJobsAcrossInstances: a batch whose input file was uploaded to A and
// that was created on A is executed by B (A runs no jobs); its results,
// and a video rendered by B, download through A.
func TestJobsAcrossInstances(t *testing.T) {
	t.Parallel()
	a, b := sharedCluster(t)
	var input bytes.Buffer
	for i := range 3 {
		fmt.Fprintf(&input, `{"key":"k%d","request":{"contents":[{"role":"user","parts":[{"text":"hello %d"}]}]}}`+"\n", i, i)
	}
	res, raw := a.do("POST", a.srv.URL+"/upload/v1beta/files", map[string]string{"Content-Type": "application/jsonl"}, input.Bytes())
	if res.StatusCode != 200 {
		t.Fatalf("upload input: %d %s", res.StatusCode, raw)
	}
	batch := a.json("POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", map[string]any{
		"batch": map[string]any{"inputConfig": map[string]any{"fileName": "files/" + fileID(t, raw)}}}, 200)
	name := batch["name"].(string)
	var op map[string]any
	waitFor(t, name+" to succeed", func() bool {
		op = a.json("GET", "/v1beta/"+name, nil, 200)
		return op["done"] == true
	})
	m := op["metadata"].(map[string]any)
	if m["state"] != "BATCH_STATE_SUCCEEDED" {
		t.Fatalf("batch: %v", op)
	}
	out := strings.TrimPrefix(m["output"].(map[string]any)["responsesFile"].(string), "files/")
	for _, in := range []*instance{a, b} {
		res, got := in.download(out, nil)
		lines := strings.Split(strings.TrimSpace(string(got)), "\n")
		if res.StatusCode != 200 || len(lines) != 3 || !strings.Contains(lines[2], `"key":"k2"`) || !strings.Contains(lines[2], "hello 2") {
			t.Fatalf("results through %s: %d %s", in.srv.URL, res.StatusCode, got)
		}
	}

	video := a.json("POST", "/v1beta/models/veo-3.0-generate-001:predictLongRunning", map[string]any{
		"instances": []any{map[string]any{"prompt": "a cat"}}}, 200)
	waitFor(t, "the video", func() bool {
		op = a.json("GET", "/v1beta/"+video["name"].(string), nil, 200)
		return op["done"] == true
	})
	uri, _ := op["response"].(map[string]any)["generateVideoResponse"].(map[string]any)["generatedSamples"].([]any)[0].(map[string]any)["video"].(map[string]any)["uri"].(string)
	res, got := a.do("GET", uri, nil, nil)
	if res.StatusCode != 200 || !bytes.Equal(got, executor.MinimalMP4()) {
		t.Fatalf("video through A (%s): %d %d bytes", uri, res.StatusCode, len(got))
	}
}

// TestCancelRacesAcrossInstances: on PostgreSQL, a cancel through one
// instance racing a delete, or a function result, through the other ends
// an interaction waiting in requires_action once: one
// interaction.cancelled at most, never with a continuation that answered
// it.
func TestCancelRacesAcrossInstances(t *testing.T) {
	t.Parallel()
	a, b := sharedCluster(t)
	ctx := context.Background()
	tools := []any{map[string]any{"type": "function", "name": "lookup", "parameters": map[string]any{"type": "object"}}}
	// waiting creates an interaction and waits until it requires action
	// with its event published; it returns the id and the pending call.
	waiting := func() (string, string) {
		t.Helper()
		id := a.json("POST", "/v1beta/interactions", map[string]any{"model": "m", "input": "lookup [[requires_action]]",
			"tools": tools, "background": true}, 200)["id"].(string)
		var j *core.Job
		waitFor(t, "requires_action", func() bool {
			var err error
			if j, err = a.st.GetJob(ctx, "", id); err != nil {
				t.Fatal(err)
			}
			return j.State == core.JobRequiresAction && j.Outbox == nil
		})
		var res jobs.InteractionResult
		if err := json.Unmarshal(j.Result, &res); err != nil || len(res.Pending) != 1 {
			t.Fatalf("result %s: %v", j.Result, err)
		}
		return id, res.Pending[0].ID
	}
	events := func(id string) []string {
		t.Helper()
		projects, err := a.st.ListProjects(ctx)
		if err != nil || len(projects) != 1 {
			t.Fatalf("projects %v: %v", projects, err)
		}
		evs, err := a.st.ListEvents(ctx, core.ListEventsParams{ProjectID: projects[0].ID, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i].Subject == "interactions/"+id {
				out = append(out, evs[i].Type)
			}
		}
		return out
	}
	status := func(in *instance, method, path string, body any) int {
		var raw []byte
		if body != nil {
			raw, _ = json.Marshal(body)
		}
		res, _ := in.do(method, in.srv.URL+path, map[string]string{"Content-Type": "application/json"}, raw)
		return res.StatusCode
	}
	for range 4 {
		id, _ := waiting()
		var cancelled, deleted int
		done := make(chan struct{})
		go func() { defer close(done); cancelled = status(a, "POST", "/v1beta/interactions/"+id+"/cancel", nil) }()
		deleted = status(b, "DELETE", "/v1beta/interactions/"+id, nil)
		<-done
		if deleted != 200 || (cancelled != 200 && cancelled != 404) {
			t.Fatalf("delete %d, cancel %d", deleted, cancelled)
		}
		if got := events(id); strings.Join(got, ",") != core.EventInteractionRequiresAction+","+core.EventInteractionCancelled {
			t.Fatalf("delete/cancel race: events %v", got)
		}
	}
	for range 4 {
		id, callID := waiting()
		var cancelled, answered int
		done := make(chan struct{})
		go func() { defer close(done); cancelled = status(a, "POST", "/v1beta/interactions/"+id+"/cancel", nil) }()
		answered = status(b, "POST", "/v1beta/interactions", map[string]any{"model": "m", "previous_interaction_id": id,
			"background": true, "input": []any{map[string]any{"type": "function_result", "call_id": callID, "result": "42"}}})
		<-done
		want := core.EventInteractionRequiresAction
		switch {
		case cancelled == 200 && answered == 400:
			want += "," + core.EventInteractionCancelled
		case answered == 200 && cancelled == 400:
		default:
			t.Fatalf("cancel %d, answer %d", cancelled, answered)
		}
		if got := events(id); strings.Join(got, ",") != want {
			t.Fatalf("answer/cancel race: events %v, want %s", got, want)
		}
	}
}
