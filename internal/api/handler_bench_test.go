package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/secretbox"
	"github.com/longhook/longhook/internal/store/sqlite"
)

// BenchmarkPublishHandler measures a single-event publish through the
// whole handler (authentication, routing, decoding, the publish into a
// real SQLite store, the response) as `longhook bench` sends it: a
// 600-byte body, one subscribed webhook. It calls ServeHTTP with a
// recorder, so net/http's own request handling is not in it.
func BenchmarkPublishHandler(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "longhook.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	master := make([]byte, secretbox.KeySize)
	_, _ = rand.Read(master)
	box, err := secretbox.New(master)
	if err != nil {
		b.Fatal(err)
	}
	p := core.Project{ID: core.NewID(), Name: "bench", CreateTime: core.SystemClock{}.Now()}
	if err := st.CreateProject(ctx, p); err != nil {
		b.Fatal(err)
	}
	plain, digest, hint := api.NewAPIKey()
	if err := st.CreateAPIKey(ctx, core.APIKey{ID: core.NewID(), ProjectID: p.ID, Name: "k", Digest: digest, Hint: hint,
		CreateTime: core.SystemClock{}.Now()}); err != nil {
		b.Fatal(err)
	}
	h := api.NewServer(api.Deps{Store: st, Cipher: box, Policy: core.AddressPolicy{Dev: true}})
	hook := `{"name":"h","uri":"http://127.0.0.1:9/hook","subscribed_events":["batch.succeeded"]}`
	if code := serve(h, plain, "/v1beta/webhooks", []byte(hook)); code != http.StatusOK {
		b.Fatalf("create webhook: %d", code)
	}
	body := []byte(`{"data":{"id":"batches/bench","output_file_uri":"files/bench","pad":"` + strings.Repeat("x", 490) +
		`","sent_at_ns":1765000000000000000},"type":"batch.succeeded"}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if code := serve(h, plain, "/v1beta/events", body); code != http.StatusOK {
			b.Fatalf("publish: %d", code)
		}
	}
}

// serve sends one POST through h and returns the status.
func serve(h http.Handler, key, path string, body []byte) int {
	r := httptest.NewRequest("POST", path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("x-goog-api-key", key)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}
