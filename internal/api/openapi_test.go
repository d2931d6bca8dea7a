package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/longhook/longhook/docs"
	"github.com/longhook/longhook/internal/api"
)

// TestOpenAPICoversRoutes: docs/openapi.json describes every route the
// server registers (api.Routes, the list routes.go itself records), and
// nothing else. A new route without its operation fails here.
func TestOpenAPICoversRoutes(t *testing.T) {
	t.Parallel()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(docs.OpenAPI, &doc); err != nil {
		t.Fatalf("docs/openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	registered := map[string]bool{}
	for _, r := range api.Routes() {
		// The document lists versioned routes under /v1 (v1beta and
		// v1alpha serve the same).
		op := r.Method + " " + strings.ReplaceAll(r.Path, "{v}", "v1")
		registered[op] = true
		if !documented[op] {
			t.Errorf("route %s %s is not in docs/openapi.json (add its operation)", r.Method, r.Path)
		}
	}
	for op := range documented {
		if !registered[op] {
			t.Errorf("docs/openapi.json documents %s, which no route serves", op)
		}
	}
}

// TestOpenAPIServed: GET /openapi.json answers the embedded document
// without a key.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.callWith("", nil, "GET", "/openapi.json", nil).must(t, http.StatusOK)
	if string(r.raw) != string(docs.OpenAPI) {
		t.Fatalf("served document differs from docs/openapi.json")
	}
}
