package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs"
	"github.com/longhook/longhook/internal/leader"
	"github.com/longhook/longhook/internal/publish"
	"github.com/longhook/longhook/internal/secretbox"
	"github.com/longhook/longhook/internal/store/sqlite"
)

// Example wires the jobs service the way `longhook serve` does: served by
// the API server (api.Deps.Jobs), the runner next to the engine, and the
// periodic tasks on the leader. Then it runs a batch.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, _ := os.MkdirTemp("", "longhook-example-")
	defer os.RemoveAll(dir)
	store, _ := sqlite.Open(ctx, filepath.Join(dir, "longhook.db"))
	defer store.Close()
	box, _ := secretbox.New(make([]byte, secretbox.KeySize))
	catalog, _ := core.NewCatalog()
	policy := core.AddressPolicy{Dev: true}
	pub := publish.New(publish.Config{Store: store, Catalog: catalog, Policy: policy})

	svc, err := jobs.New(jobs.Config{
		Store: store, Publisher: pub, Dir: filepath.Join(dir, "jobs"), Policy: policy,
		SoleRunner: !store.Capabilities().SharedAcrossProcesses,
	})
	if err != nil {
		panic(err)
	}
	_ = leader.New(leader.Config{Store: store, Tasks: svc.Tasks()})
	srv := httptest.NewServer(api.NewServer(api.Deps{Store: store, Cipher: box, Publisher: pub, Jobs: svc}))
	defer srv.Close()
	done := make(chan struct{})
	go func() { _ = svc.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	project := core.Project{ID: core.NewID(), Name: "demo", CreateTime: time.Now()}
	_ = store.CreateProject(ctx, project)
	key, digest, _ := api.NewAPIKey()
	_ = store.CreateAPIKey(ctx, core.APIKey{ID: core.NewID(), ProjectID: project.ID, Digest: digest, CreateTime: time.Now()})

	call := func(method, path, body string) map[string]any {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("x-goog-api-key", key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return out
	}
	op := call("POST", "/v1/models/gemini-2.5-flash:batchGenerateContent",
		`{"batch":{"inputConfig":{"requests":{"requests":[{"request":{"contents":[{"parts":[{"text":"hello"}]}]}}]}}}}`)
	name := op["name"].(string)
	for op["done"] != true {
		time.Sleep(time.Millisecond)
		op = call("GET", "/v1/"+name, "")
	}
	meta := op["metadata"].(map[string]any)
	fmt.Println(meta["state"], meta["output"].(map[string]any)["responsesFile"] == "files/batch-"+strings.TrimPrefix(name, "batches/"))
	// Output: BATCH_STATE_SUCCEEDED true
}
