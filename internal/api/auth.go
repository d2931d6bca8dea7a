package api

import (
	"context"
	"errors"
	"net/http"
	"net/textproto"
	"sync"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// keyLookup is what the authentication path needs of the store.
type keyLookup interface {
	LookupAPIKey(ctx context.Context, digest []byte) (core.APIKey, error)
}

// keyContextKey carries the authenticated core.APIKey in a request context.
type keyContextKey struct{}

// KeyFromContext returns the API key that authenticated the request. Every
// request under /v1, /v1beta and /v1alpha has one, as do file transfers
// under /upload/{v} and /download/{v} (but an upload session URL's).
func KeyFromContext(ctx context.Context) (core.APIKey, bool) {
	k, ok := ctx.Value(keyContextKey{}).(core.APIKey)
	return k, ok
}

// authenticate resolves the request's API key: the x-goog-api-key header,
// else the key query parameter. Other Google headers (Api-Revision,
// x-goog-api-client) are ignored.
func (s *server) authenticate(r *http.Request) (core.APIKey, error) {
	raw := headerValue(r.Header, "X-Goog-Api-Key")
	if raw == "" {
		raw = r.URL.Query().Get("key")
	}
	if raw == "" {
		return core.APIKey{}, errorf(core.ErrUnauthenticated,
			"Request is missing an API key: pass it in the x-goog-api-key header or the key query parameter.")
	}
	var digest [32]byte
	copy(digest[:], KeyDigest(raw))
	now := time.Now()
	if k, ok := s.keys.get(digest, now); ok {
		return k, nil
	}
	k, err := s.apiKeys.LookupAPIKey(r.Context(), digest[:])
	switch {
	case errors.Is(err, core.ErrNotFound) || err == nil && !k.RevokeTime.IsZero():
		return core.APIKey{}, errorf(core.ErrUnauthenticated, "API key not valid. Please pass a valid API key.")
	case err != nil:
		return core.APIKey{}, err
	}
	s.keys.put(digest, k, now)
	return k, nil
}

// ProjectHeader lets an admin key act in another project: every
// project-scoped route then reads and writes that project (the console's
// project switcher uses it). Project keys may not send it.
const ProjectHeader = "x-longhook-project"

// projectHeaderKey is ProjectHeader as net/http stores it.
var projectHeaderKey = textproto.CanonicalMIMEHeaderKey(ProjectHeader)

// headerValue is h.Get(key) for a key already in canonical form: Get
// canonicalizes its argument on every call, which allocates for a name
// net/textproto does not know (every request reads two).
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// actAs applies ProjectHeader to an authenticated key. The header sent
// twice with different values is 400: which project a request acts in
// must not depend on which copy a proxy or a server reads first.
func (s *server) actAs(r *http.Request, key core.APIKey) (core.APIKey, error) {
	vs := r.Header[projectHeaderKey]
	for _, v := range vs[min(1, len(vs)):] {
		if v != vs[0] {
			return core.APIKey{}, core.Invalid(ProjectHeader, "%s is sent more than once with different values (%q, %q): send it once", ProjectHeader, vs[0], v)
		}
	}
	p := headerValue(r.Header, projectHeaderKey)
	if p == "" || p == key.ProjectID {
		return key, nil
	}
	if !key.Admin {
		return core.APIKey{}, errorf(core.ErrPermissionDenied, "Only an admin API key may act in another project (%s).", ProjectHeader)
	}
	if _, err := s.d.Store.GetProject(r.Context(), p); err != nil {
		return core.APIKey{}, notFoundAs(err, "project", p)
	}
	key.ProjectID = p
	return key, nil
}

// keyCache remembers authenticated keys by digest for a short TTL, so a
// burst of publishes costs one store look-up. Only valid keys are cached.
// Revocation through this server purges it at once; a revocation made
// elsewhere takes effect here within the TTL. It uses the wall clock, not
// Deps.Clock: the TTL bounds staleness in real time.
type keyCache struct {
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[[32]byte]cachedKey
}

type cachedKey struct {
	key     core.APIKey
	expires time.Time
}

func newKeyCache(ttl time.Duration, size int) *keyCache {
	return &keyCache{ttl: ttl, max: size, m: make(map[[32]byte]cachedKey)}
}

func (c *keyCache) get(digest [32]byte, now time.Time) (core.APIKey, bool) {
	if c.ttl <= 0 {
		return core.APIKey{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[digest]
	if !ok || !now.Before(e.expires) {
		return core.APIKey{}, false
	}
	return e.key, true
}

func (c *keyCache) put(digest [32]byte, k core.APIKey, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for d, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, d)
			}
		}
		if len(c.m) >= c.max {
			// Still full of live entries: start over rather than track
			// recency; a miss costs one indexed look-up.
			clear(c.m)
		}
	}
	c.m[digest] = cachedKey{key: k, expires: now.Add(c.ttl)}
}

// purge forgets every cached key (after a revocation).
func (c *keyCache) purge() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}
