package api

import (
	"net/http"

	"github.com/longhook/longhook/docs"
)

// serveOpenAPI serves the OpenAPI document of this API (docs/openapi.json).
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = w.Write(docs.OpenAPI)
}
