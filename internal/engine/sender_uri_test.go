package engine

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/longhook/longhook/internal/core"
)

// Destination URIs are parsed once and shared by the attempts to them:
// every attempt still reaches its own URI exactly as configured (a copy
// of a cached URI is not mixed up with another's), from many attempts at
// once, and a URI too long to cache is parsed per attempt.
func TestSenderURIsParsedOnce(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Host+" "+r.RequestURI]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	s := devSender(t, SenderConfig{})
	paths := []string{"/a//b/../c?x=1", "/other?y=2#frag", "/", "/" + strings.Repeat("l", maxCachedURILen)}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				p := paths[(g+i)%len(paths)]
				res := s.Send(context.Background(), Request{URI: srv.URL + p, Body: []byte(`{}`)})
				if res.StatusCode != http.StatusNoContent {
					t.Errorf("%s: status %d: %s", p, res.StatusCode, res.Err)
				}
			}
		})
	}
	wg.Wait()
	want := map[string]int{}
	for g := range 8 {
		for i := range 20 {
			p := strings.TrimSuffix(paths[(g+i)%len(paths)], "#frag")
			want[host+" "+p]++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for k, n := range want {
		if seen[k] != n {
			t.Errorf("%.60q: %d requests, want %d", k, seen[k], n)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("requests went to %d URIs, want %d: %v", len(seen), len(want), seen)
	}
}

// A URI that is not an http(s) URI with a host fails as invalid on every
// attempt, cached or not, and the cache stays within its bound however
// many URIs go through it.
func TestSenderURICacheInvalidAndBounded(t *testing.T) {
	t.Parallel()
	s := devSender(t, SenderConfig{})
	for _, uri := range []string{"ftp://example.com/x", "http:///nohost", "example.com/x", "http://exa mple.com/", "/" + strings.Repeat("x", maxCachedURILen)} {
		for range 2 {
			if k := failureKind(t, s.Send(context.Background(), Request{URI: uri})); k != core.FailInvalid {
				t.Errorf("%.40q: failure %v, want invalid", uri, k)
			}
		}
	}
	for i := range maxCachedURIs + 100 {
		s.Send(context.Background(), Request{URI: fmt.Sprintf("ftp://example.com/%d", i)})
	}
	n := 0
	s.uris.m.Range(func(any, any) bool { n++; return true })
	if n > maxCachedURIs || s.uris.n.Load() > maxCachedURIs {
		t.Errorf("cache holds %d URIs (counted %d), want at most %d", n, s.uris.n.Load(), maxCachedURIs)
	}
}
