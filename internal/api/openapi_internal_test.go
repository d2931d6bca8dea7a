package api

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/longhook/longhook/docs"
	"github.com/longhook/longhook/internal/core"
)

// TestOpenAPISchemasNameEveryField: each schema of docs/openapi.json that
// describes a wire type names exactly the JSON members the server reads or
// writes. A request schema with additionalProperties false that lacks a
// member the server accepts makes every generated client (and every
// validating proxy) refuse a valid request; a response schema that lacks
// one hides it from them. The document is hand-written, so this is what
// keeps it from drifting when a field is added.
func TestOpenAPISchemasNameEveryField(t *testing.T) {
	t.Parallel()
	var doc struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(docs.OpenAPI, &doc); err != nil {
		t.Fatalf("docs/openapi.json: %v", err)
	}
	wire := map[string]any{
		// requests
		"WebhookCreate":       createWebhookRequest{},
		"WebhookUpdate":       updateWebhookRequest{},
		"RotateRequest":       rotateRequest{},
		"WebhookConfig":       core.WebhookConfig{},
		"RateLimit":           core.RateLimit{},
		"PublishRequest":      publishRequest{},
		"BatchPublishRequest": batchPublishRequest{},
		"RecoverRequest":      recoverRequest{},
		"ProjectCreate":       createProjectRequest{},
		"KeyCreate":           createKeyRequest{},
		// responses
		"Webhook":              webhookJSON{},
		"SigningSecret":        signingSecretJSON{},
		"WebhookList":          listWebhooksResponse{},
		"RotateResponse":       rotateResponse{},
		"Event":                eventJSON{},
		"EventDetail":          eventDetailJSON{},
		"EventList":            listEventsResponse{},
		"BatchPublishResponse": batchPublishResponse{},
		"BatchPublishedEvent":  batchEventJSON{},
		"Delivery":             deliveryJSON{},
		"DeliveryDetail":       deliveryDetailJSON{},
		"Attempt":              attemptJSON{},
		"DeliveryList":         listDeliveriesResponse{},
		"RecoverResponse":      recoverResponse{},
		"Project":              ProjectResource{},
		"ProjectList":          listProjectsResponse{},
		"APIKey":               APIKeyResource{},
		"KeyList":              listKeysResponse{},
	}
	for name, v := range wire {
		raw, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("docs/openapi.json has no schema %s", name)
			continue
		}
		documented := schemaProperties(t, doc.Components.Schemas, raw)
		served := jsonMembers(reflect.TypeOf(v))
		if !slices.Equal(documented, served) {
			t.Errorf("schema %s names %v; the server's %T has %v", name, documented, v, served)
		}
	}
}

// schemaProperties lists the property names of a schema, following $ref
// and allOf.
func schemaProperties(t *testing.T, all map[string]json.RawMessage, raw json.RawMessage) []string {
	t.Helper()
	var s struct {
		Ref        string                     `json:"$ref"`
		AllOf      []json.RawMessage          `json:"allOf"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	var out []string
	if s.Ref != "" {
		out = append(out, schemaProperties(t, all, all[strings.TrimPrefix(s.Ref, "#/components/schemas/")])...)
	}
	for _, part := range s.AllOf {
		out = append(out, schemaProperties(t, all, part)...)
	}
	for p := range s.Properties {
		out = append(out, p)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// jsonMembers lists the JSON member names encoding/json uses for a struct
// type, embedded structs included.
func jsonMembers(typ reflect.Type) []string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			out = append(out, jsonMembers(f.Type)...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// TestOpenAPINamesEveryQueryParameter: every query parameter a handler
// reads (r.URL.Query().Get, q.Get, the paging helpers) is a parameter of
// some operation in docs/openapi.json, or the key of the apiKeyQuery
// scheme. A parameter only the code knows is invisible to generated
// clients.
func TestOpenAPINamesEveryQueryParameter(t *testing.T) {
	t.Parallel()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(docs.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{"key": true} // components.securitySchemes.apiKeyQuery
	for _, item := range doc.Paths {
		for _, raw := range item {
			var op struct {
				Parameters []struct{ Name, In string } `json:"parameters"`
			}
			_ = json.Unmarshal(raw, &op)
			for _, p := range op.Parameters {
				if p.In == "query" {
					documented[p.Name] = true
				}
			}
		}
	}
	var missing []string
	for _, m := range sourceMatches(t, regexp.MustCompile(`(?:Query\(\)|\bq)\.Get\("([^"]+)"\)`)) {
		if !documented[m.match] {
			missing = append(missing, m.file+": "+m.match)
		}
	}
	if len(missing) > 0 {
		t.Errorf("query parameters read by the server but in no operation of docs/openapi.json: %v", missing)
	}
}

// TestOpenAPINamesEveryRequestHeader: a request header a handler reads
// (other than HTTP's own: Content-Type, Content-Length, Host, …) is a
// header parameter of docs/openapi.json, and every operation that takes a
// key names ProjectHeader — an admin key's way to act in another project,
// which the document did not mention, so a generated client could not send
// it (issue 17: the document describes the whole API).
func TestOpenAPINamesEveryRequestHeader(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPIParams(t)
	documented := map[string]bool{"x-goog-api-key": true} // components.securitySchemes.apiKeyHeader
	for path, item := range doc.Paths {
		for method, raw := range item {
			var op struct {
				Parameters []openAPIParam `json:"parameters"`
				Security   *[]any         `json:"security"`
			}
			_ = json.Unmarshal(raw, &op)
			project := false
			for _, p := range op.Parameters {
				p = doc.resolve(p)
				if p.In == "header" {
					documented[strings.ToLower(p.Name)] = true
					project = project || strings.EqualFold(p.Name, ProjectHeader)
				}
			}
			if keyed := op.Security == nil || len(*op.Security) > 0; keyed && !project {
				t.Errorf("%s %s takes a key but does not name the %s header", strings.ToUpper(method), path, ProjectHeader)
			}
		}
	}
	standard := map[string]bool{"content-type": true, "content-length": true, "content-encoding": true, "host": true, "date": true,
		"x-forwarded-proto": true, "x-content-type-options": true,
		// The browser's CORS protocol (cors.go), not the API's parameters.
		"origin": true, "access-control-request-method": true, "access-control-request-headers": true}
	var missing []string
	for _, m := range sourceMatches(t, regexp.MustCompile(`Header\.Get\("([^"]+)"\)`)) {
		if h := strings.ToLower(m.match); !standard[h] && !documented[h] {
			missing = append(missing, m.file+": "+m.match)
		}
	}
	if len(missing) > 0 {
		t.Errorf("request headers read by the server but in no operation of docs/openapi.json: %v", missing)
	}
}

// TestOpenAPIDeclaresReplayedHeader: both publish operations declare the
// response header that marks a repeated idempotency key, so generated
// clients can read it.
func TestOpenAPIDeclaresReplayedHeader(t *testing.T) {
	t.Parallel()
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Headers map[string]json.RawMessage `json:"headers"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(docs.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/events", "/v1/events:batchPublish"} {
		if _, ok := doc.Paths[path]["post"].Responses["200"].Headers[replayedHeader]; !ok {
			t.Errorf("POST %s: the 200 response does not declare the %s header", path, replayedHeader)
		}
	}
}

// sourceMatch is a match of sourceMatches: its first group, in file.
type sourceMatch struct{ file, match string }

// sourceMatches returns every match of re (its first group) in the
// package's non-test Go files, in file order.
func sourceMatches(t *testing.T, re *regexp.Regexp) []sourceMatch {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []sourceMatch
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			out = append(out, sourceMatch{name, m[1]})
		}
	}
	return out
}

// TestOpenAPIQueryParametersMatchRoutes: each operation of
// docs/openapi.json names exactly the query parameters its route declares
// in routes.go (takesQuery refuses any other), besides the system
// parameters it may document (alt, uploadType, …). A parameter declared
// but not documented is invisible to generated clients; one documented
// but not declared is refused.
func TestOpenAPIQueryParametersMatchRoutes(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPIParams(t)
	n := 0
	for _, r := range Routes() {
		if !strings.Contains(r.Path, "{v}") {
			continue // unversioned routes ignore their query
		}
		raw := doc.Paths[strings.ReplaceAll(r.Path, "{v}", "v1")][strings.ToLower(r.Method)]
		var op struct {
			Parameters []openAPIParam `json:"parameters"`
		}
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatalf("%s %s: %v", r.Method, r.Path, err)
		}
		var documented []string
		for _, p := range op.Parameters {
			p = doc.resolve(p)
			if p.In == "query" && !slices.Contains(systemParams, p.Name) {
				documented = append(documented, p.Name)
			}
		}
		slices.Sort(documented)
		declared := slices.Sorted(slices.Values(r.Query))
		if !slices.Equal(documented, declared) {
			t.Errorf("%s %s: docs/openapi.json names the query parameters %v, routes.go declares %v", r.Method, r.Path, documented, declared)
		}
		n++
	}
	if n < 40 {
		t.Fatalf("checked %d routes", n)
	}
}

// openAPIParam is an operation's parameter in docs/openapi.json, or a
// reference to one of components.parameters.
type openAPIParam struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

// openAPIParams is what the parameter tests read of docs/openapi.json.
type openAPIParams struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Parameters map[string]openAPIParam `json:"parameters"`
	} `json:"components"`
}

func loadOpenAPIParams(t *testing.T) openAPIParams {
	t.Helper()
	var doc openAPIParams
	if err := json.Unmarshal(docs.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// resolve returns the parameter p refers to, or p.
func (d openAPIParams) resolve(p openAPIParam) openAPIParam {
	if p.Ref == "" {
		return p
	}
	return d.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
}
