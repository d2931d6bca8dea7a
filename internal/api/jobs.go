package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// This file holds what the jobs routes (batches, operations, video,
// interactions, files and uploads) share: the external base URL, the
// version of a path, and webhook_config as those APIs spell it.

// apiBase is the external URL of the version prefix the request used, e.g.
// "http://127.0.0.1:8080/v1beta" (PublicURL when configured, else the
// request's scheme and Host).
func (s *server) apiBase(r *http.Request) string {
	return s.origin(r) + "/" + versionOf(r.URL.Path)
}

// origin is the external scheme://host of the server.
func (s *server) origin(r *http.Request) string {
	if base := strings.TrimSuffix(s.d.PublicURL, "/"); base != "" {
		return base
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// versionOf returns the version prefix of a request path ("v1beta"), for
// /v1beta/..., /upload/v1beta/... and /download/v1beta/....
func versionOf(path string) string {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for _, p := range parts[:min(2, len(parts))] {
		for _, v := range apiVersions {
			if p == v {
				return v
			}
		}
	}
	return "v1beta"
}

// protoTime formats a time of a proto3 JSON resource (batches, operations,
// files) as google.protobuf.Timestamp does: RFC 3339 in UTC with 0, 3, 6 or
// 9 fractional digits, the fewest that hold it exactly (Go's RFC3339Nano
// trims trailing zeros, which gives 1 to 9).
func protoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.UTC()
	switch ns := t.Nanosecond(); {
	case ns == 0:
		return t.Format("2006-01-02T15:04:05Z")
	case ns%1e6 == 0:
		return t.Format("2006-01-02T15:04:05.000Z")
	case ns%1e3 == 0:
		return t.Format("2006-01-02T15:04:05.000000Z")
	default:
		return t.Format("2006-01-02T15:04:05.000000000Z")
	}
}

// wireWebhookConfig is webhook_config as clients send it: lowerCamel
// (batches, video) or snake_case (interactions, and tolerated everywhere).
type wireWebhookConfig struct {
	URIs          []string        `json:"uris"`
	UserMetadata  json.RawMessage `json:"userMetadata"`
	UserMetadataS json.RawMessage `json:"user_metadata"`
	Audience      string          `json:"audience"`
}

// webhookConfig validates the non-nil one of cs (its spellings) under field
// and returns the core form (nil when every c is nil; 400 when two are set).
func (s *server) webhookConfig(field string, cs ...*wireWebhookConfig) (*core.WebhookConfig, error) {
	var c *wireWebhookConfig
	for _, x := range cs {
		if x != nil && c != nil {
			return nil, bothSpellings(field, "webhookConfig", "webhook_config")
		}
		if x != nil {
			c = x
		}
	}
	if c == nil {
		return nil, nil
	}
	meta := c.UserMetadata
	if len(c.UserMetadataS) > 0 {
		if len(meta) > 0 {
			return nil, core.Invalid(field, "%s: set user_metadata or userMetadata, not both", field)
		}
		meta = c.UserMetadataS
	}
	if string(meta) == "null" {
		meta = nil
	}
	cfg := &core.WebhookConfig{URIs: c.URIs, UserMetadata: meta, Audience: c.Audience}
	if err := s.d.Policy.ValidateWebhookConfig(field, cfg); err != nil {
		return nil, err
	}
	// Delivered inside data (publish.Validate checks a publish's).
	if err := core.CheckDepth(field+".user_metadata", meta, core.MaxUserMetadataDepth); err != nil {
		return nil, err
	}
	return cfg, nil
}

// renderWebhookConfig echoes a job's webhook_config in snake_case, as it
// was sent (without uris when it had none).
func renderWebhookConfig(c *core.WebhookConfig) map[string]any {
	if c == nil {
		return nil
	}
	m := map[string]any{}
	if len(c.URIs) > 0 {
		m["uris"] = c.URIs
	}
	if len(c.UserMetadata) > 0 {
		m["user_metadata"] = c.UserMetadata
	}
	if c.Audience != "" {
		m["audience"] = c.Audience
	}
	return m
}

// bothSpellings refuses a body that sets one field under both of its
// accepted names (lowerCamel and snake_case): which one to take would be a
// guess, like a name given twice.
func bothSpellings(field, camel, snake string) error {
	return core.Invalid(field, "%s: set %s or %s, not both", field, camel, snake)
}

// firstNonEmpty returns the first non-empty string of vs.
func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
