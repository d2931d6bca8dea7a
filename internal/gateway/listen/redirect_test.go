package listen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestListenNeverFollowsRedirects (issue 13, defect 3): a stream answered
// with a redirect ends with an error naming it; the redirect target, on
// another origin, never gets a request, so x-goog-api-key (or the bearer
// token) never leaves for another host.
func TestListenNeverFollowsRedirects(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	defer origin.Close()
	local := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer local.Close()
	for _, auth := range [][]string{
		{"--from", origin.URL + "/v1beta/webhooks/abc", "--api-key", "secret-api-key"},
		{"--from", origin.URL + "/_longhook/listen/src", "--token", "secret-token"},
	} {
		args := append(auth, "--forward-to", local.URL, "--state", filepath.Join(t.TempDir(), "s.json"))
		err := RunListen(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "redirect") {
			t.Errorf("%v: %v, want an error about the redirect", auth, err)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the redirect target got %d requests", n)
	}
}
