package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// RouteConfig selects the events a sink receives; an event must pass both
// parts that are set. Events a sink does not take count as done for it.
type RouteConfig struct {
	// Types are event-type patterns, any one of which must match; "*"
	// stands for any run of characters ("invoice.*", "orders/*").
	Types []string `yaml:"types"`
	// Match maps JSON paths (dot-separated members, numbers index arrays:
	// "data.items.0.id") to the scalar each must equal; all must. An event
	// whose body is not JSON does not match.
	Match map[string]any `yaml:"match"`
}

// TransformConfig rewrites the payload a sink receives, declaratively: a
// member is selected, then fields are added. The original signature no
// longer covers the result, so signature headers are not forwarded with
// it. An event whose body is not JSON, or has no member at Select, is not
// sent to the sink.
type TransformConfig struct {
	// Select is a JSON path; the payload becomes the value there, e.g.
	// "data".
	Select string `yaml:"select"`
	// Add sets top-level fields of the (object) payload to strings, which
	// may use {source}, {type}, {id} and {received_at}.
	Add map[string]string `yaml:"add"`
}

// validate reports the first error of a route, naming the field.
func (r *RouteConfig) validate(at string) error {
	if len(r.Types) == 0 && len(r.Match) == 0 {
		return fmt.Errorf("gateway: config: %s.route: set types, match or both", at)
	}
	for i, t := range r.Types {
		if t == "" {
			return fmt.Errorf("gateway: config: %s.route.types[%d]: empty pattern", at, i)
		}
	}
	for p, v := range r.Match {
		if err := checkPath(p); err != nil {
			return fmt.Errorf("gateway: config: %s.route.match: %w", at, err)
		}
		switch v.(type) {
		case nil, string, bool, int, int64, uint64, float64:
		default:
			return fmt.Errorf("gateway: config: %s.route.match[%q]: the value must be a string, number, boolean or null", at, p)
		}
	}
	return nil
}

func (tc *TransformConfig) validate(at string) error {
	if tc.Select == "" && len(tc.Add) == 0 {
		return fmt.Errorf("gateway: config: %s.transform: set select, add or both", at)
	}
	if tc.Select != "" {
		if err := checkPath(tc.Select); err != nil {
			return fmt.Errorf("gateway: config: %s.transform.select: %w", at, err)
		}
	}
	for k, v := range tc.Add {
		if k == "" {
			return fmt.Errorf("gateway: config: %s.transform.add: empty field name", at)
		}
		rest := strings.NewReplacer("{source}", "", "{type}", "", "{id}", "", "{received_at}", "").Replace(v)
		if strings.ContainsAny(rest, "{}") {
			return fmt.Errorf("gateway: config: %s.transform.add[%q]: only {source}, {type}, {id} and {received_at} may appear in braces", at, k)
		}
	}
	return nil
}

func checkPath(p string) error {
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return fmt.Errorf("path %q has an empty member name", p)
		}
	}
	return nil
}

// routedSink applies a sink's route and transform around it.
type routedSink struct {
	Sink
	route     *RouteConfig
	transform *TransformConfig
	want      map[string][]byte // Match values as JSON
	sigHeader string            // the source's own signature header (canonical), "" for none
}

// withRouting wraps s when the config routes or transforms; sigHeader is
// the signature header of the source's preset ("" for none), dropped with
// the others from a transformed payload.
func withRouting(s Sink, c SinkConfig, sigHeader string) Sink {
	if c.Route == nil && c.Transform == nil {
		return s
	}
	r := &routedSink{Sink: s, route: c.Route, transform: c.Transform, want: map[string][]byte{}, sigHeader: sigHeader}
	if c.Route != nil {
		for p, v := range c.Route.Match {
			b, _ := json.Marshal(v) // scalars: validated
			r.want[p] = b
		}
	}
	return r
}

// Send implements Sink: an event the route does not take, or the
// transform cannot apply to, is done without being sent.
func (r *routedSink) Send(ctx context.Context, e *Event) error {
	if r.route != nil && len(r.route.Types) > 0 && !anyGlob(r.route.Types, e.Type) {
		return nil
	}
	var doc any
	if len(r.want) > 0 || r.transform != nil {
		dec := json.NewDecoder(bytes.NewReader(e.Body))
		dec.UseNumber()
		if dec.Decode(&doc) != nil {
			return nil
		}
	}
	for p, want := range r.want {
		v, ok := lookup(doc, p)
		if !ok {
			return nil
		}
		got, err := json.Marshal(v)
		if err != nil || !bytes.Equal(got, want) {
			return nil
		}
	}
	if r.transform == nil {
		return r.Sink.Send(ctx, e)
	}
	body, ok := r.apply(doc, e)
	if !ok {
		return nil
	}
	out := *e
	out.Body = body
	out.Header = make(http.Header, len(e.Header))
	for k, v := range e.Header {
		if !signatureHeader(k) && k != r.sigHeader {
			out.Header[k] = v
		}
	}
	return r.Sink.Send(ctx, &out)
}

// apply computes the transformed payload.
func (r *routedSink) apply(doc any, e *Event) ([]byte, bool) {
	if r.transform.Select != "" {
		v, ok := lookup(doc, r.transform.Select)
		if !ok {
			return nil, false
		}
		doc = v
	}
	if len(r.transform.Add) > 0 {
		obj, ok := doc.(map[string]any)
		if !ok {
			return nil, false
		}
		rep := strings.NewReplacer("{source}", e.Source, "{type}", e.Type, "{id}", e.WebhookID,
			"{received_at}", e.ReceivedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
		keys := make([]string, 0, len(r.transform.Add))
		for k := range r.transform.Add {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			obj[k] = rep.Replace(r.transform.Add[k])
		}
	}
	b, err := json.Marshal(doc)
	return b, err == nil
}

// signatureHeader reports headers that sign the original body, by name
// (a generic preset's own header is dropped by withRouting's sigHeader).
func signatureHeader(canonical string) bool {
	return strings.Contains(canonical, "Signature") || strings.Contains(canonical, "Hmac")
}

// lookup walks a dot-separated path through decoded JSON.
func lookup(doc any, path string) (any, bool) {
	for _, seg := range strings.Split(path, ".") {
		switch v := doc.(type) {
		case map[string]any:
			next, ok := v[seg]
			if !ok {
				return nil, false
			}
			doc = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			doc = v[i]
		default:
			return nil, false
		}
	}
	return doc, true
}

// anyGlob reports whether s matches one of the patterns.
func anyGlob(patterns []string, s string) bool {
	for _, p := range patterns {
		if glob(p, s) {
			return true
		}
	}
	return false
}

// glob matches s against p, where "*" is any run of characters.
func glob(p, s string) bool {
	parts := strings.Split(p, "*")
	if len(parts) == 1 {
		return p == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}
