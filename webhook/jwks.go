package webhook

import (
	"context"
	"crypto"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A JWKSVerifier verifies dynamic-webhook JWTs with public keys fetched
// from the sender's JWKS endpoint. It is safe for concurrent use; create it
// once and share it.
//
// # Key cache
//
// The first Verify fetches the JWKS. The keys are then used for the
// response's Cache-Control max-age ([DefaultJWKSCacheTTL] when absent,
// clamped between the minimum refresh interval and [MaxJWKSCacheTTL]);
// "no-cache" and "no-store" mean the minimum refresh interval. A token
// whose "kid" is not cached triggers a refetch, and so does an expired
// cache, but never more often than once per minimum refresh interval
// ([WithMinRefreshInterval]), so forged key ids cannot amplify traffic to
// the sender. Concurrent callers share one fetch.
//
// If a fetch fails (endpoint down, non-200 status, more than
// [WithMaxJWKSSize] bytes, not a JWKS, or no usable key in it), the keys
// already cached keep working for up to [MaxJWKSStale] past their cache
// lifetime, so a sender's JWKS outage does not become a receiver outage.
// After that, Verify fails closed with [ErrJWKSFetch]. Keys that fail to
// parse or are marked for another use than "sig" are skipped individually.
type JWKSVerifier struct {
	url        string
	issuer     string
	audience   string
	project    string // "" unless pinned with WithProject
	algs       []string
	leeway     time.Duration
	now        func() time.Time
	client     *http.Client
	minRefresh time.Duration
	maxSize    int64

	mu          sync.Mutex
	keys        map[string]crypto.PublicKey // nil before the first successful fetch
	keyAlgs     map[string]string           // the JWK "alg" per kid, if it had one
	freshUntil  time.Time
	lastAttempt time.Time // start of the last counted fetch, for rate limiting
	lastErr     error     // of the last failed fetch
	inflight    *fetchCall
}

// fetchCall is one JWKS fetch that concurrent callers wait on.
type fetchCall struct {
	done chan struct{}
	err  error
}

// errRefreshSkipped means a refresh was not attempted because of the rate
// limit.
var errRefreshSkipped = errors.New("jwks refresh rate-limited")

// NewJWKSVerifier returns a verifier for tokens issued by issuer (the exact
// "iss" expected) for audience (a value "aud" must contain), whose keys are
// published at jwksURL (absolute http or https; use https outside local
// development). Options: [WithAlgorithms] (default RS256 only),
// [WithTolerance] as the leeway on exp, iat and nbf (default
// [DefaultLeeway]), [WithClock], [WithHTTPClient],
// [WithMinRefreshInterval], [WithMaxJWKSSize] and [WithProject] (required
// for a receiver of a multi-tenant sender such as a shared longhook
// server).
func NewJWKSVerifier(jwksURL, issuer, audience string, opts ...Option) (*JWKSVerifier, error) {
	u, err := url.Parse(jwksURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("webhook: new jwks verifier: jwks url %q is not an absolute http(s) url", jwksURL)
	}
	if issuer == "" || audience == "" {
		return nil, errors.New("webhook: new jwks verifier: issuer and audience are required")
	}
	cfg, err := newConfig(DefaultLeeway, opts)
	if err != nil {
		return nil, fmt.Errorf("webhook: new jwks verifier: %w", err)
	}
	if cfg.client == nil {
		cfg.client = &http.Client{Timeout: defaultFetchTimeout}
	}
	return &JWKSVerifier{
		url:        jwksURL,
		issuer:     issuer,
		audience:   audience,
		project:    cfg.project,
		algs:       cfg.algs,
		leeway:     cfg.tolerance,
		now:        cfg.now,
		client:     cfg.client,
		minRefresh: cfg.minRefresh,
		maxSize:    cfg.maxJWKSSize,
	}, nil
}

// Verify checks the JWT in the webhook-signature header of h against body,
// the raw request body, and returns its claims. In order it checks: the
// headers are present, the token is a compact JWS, its "alg" is allowed,
// its "kid" is in the JWKS, the key fits the algorithm, the signature, then
// "iss", "aud", "project" (when pinned), "exp", "iat"/"nbf" (with
// leeway), "body_sha256" against
// body and "jti" against the webhook-id header. Each failure wraps its own
// sentinel error (see the package's Err variables). ctx bounds a JWKS
// fetch, if one is needed.
func (v *JWKSVerifier) Verify(ctx context.Context, h http.Header, body []byte) (*Claims, error) {
	return v.VerifyRaw(ctx, header(h, canonID, HeaderID), header(h, canonSignature, HeaderSignature), body)
}

// VerifyRaw is [JWKSVerifier.Verify] for callers that hold the webhook-id
// value and the token rather than an [http.Header].
func (v *JWKSVerifier) VerifyRaw(ctx context.Context, id, token string, body []byte) (*Claims, error) {
	if id == "" {
		return nil, missing(HeaderID)
	}
	if token == "" {
		return nil, missing(HeaderSignature)
	}
	t, err := parseJWS(token)
	if err != nil {
		return nil, err
	}
	alg := t.header.Alg
	if !slices.Contains(v.algs, alg) {
		return nil, fmt.Errorf("%w: %.20q (allowed: %s)", ErrAlgorithmNotAllowed, alg, strings.Join(v.algs, ", "))
	}
	if t.header.Kid == "" {
		return nil, fmt.Errorf("%w: token has no kid", ErrUnknownKeyID)
	}
	pub, keyAlg, err := v.key(ctx, t.header.Kid)
	if err != nil {
		return nil, err
	}
	if algKeyType[alg] != keyTypeOf(pub) || (keyAlg != "" && keyAlg != alg) {
		return nil, fmt.Errorf("%w: %s token for a %s key", ErrAlgorithmNotAllowed, alg, keyTypeOf(pub))
	}
	if err := verifySignature(alg, pub, t.input, t.sig); err != nil {
		return nil, err
	}
	var wc wireClaims
	if err := unmarshalClaims(t.payload, &wc); err != nil {
		return nil, fmt.Errorf("%w: jwt claims: %v", ErrMalformed, err)
	}
	if err := v.checkClaims(&wc, id, body); err != nil {
		return nil, err
	}
	c := wc.Claims
	c.Audience = v.audience
	return &c, nil
}

// checkClaims validates the registered claims of a token whose signature
// has been verified.
func (v *JWKSVerifier) checkClaims(c *wireClaims, id string, body []byte) error {
	if c.Issuer != v.issuer {
		return fmt.Errorf("%w: got %.200q, want %q", ErrIssuer, c.Issuer, v.issuer)
	}
	if !slices.Contains(c.Audience, v.audience) {
		return fmt.Errorf("%w: got %.200q, want %q", ErrAudience, strings.Join(c.Audience, " "), v.audience)
	}
	if v.project != "" && c.Project != v.project {
		return fmt.Errorf("%w: got %.100q, want %q", ErrProject, c.Project, v.project)
	}
	now := v.now()
	if c.ExpiresAt == 0 {
		return fmt.Errorf("%w: token has no exp", ErrTokenExpired)
	}
	if exp := c.ExpiresAt.Time(); !now.Before(exp.Add(v.leeway)) {
		return fmt.Errorf("%w: expired %v ago (leeway %v)", ErrTokenExpired, now.Sub(exp).Truncate(time.Second), v.leeway)
	}
	for _, nb := range [...]NumericDate{c.IssuedAt, c.NotBefore} {
		if t := nb.Time(); nb != 0 && t.After(now.Add(v.leeway)) {
			return fmt.Errorf("%w: valid in %v (leeway %v)", ErrTokenNotYetValid, t.Sub(now).Truncate(time.Second), v.leeway)
		}
	}
	if c.BodySHA256 == "" {
		return fmt.Errorf("%w: token has no body_sha256", ErrBodyHash)
	}
	if subtle.ConstantTimeCompare([]byte(c.BodySHA256), []byte(BodyHash(body))) != 1 {
		return ErrBodyHash
	}
	if c.ID != id {
		return ErrTokenID
	}
	return nil
}

// key returns the public key for kid and the "alg" its JWK declared,
// fetching the JWKS when the cache is empty, expired or lacks kid, within
// the rate limit.
func (v *JWKSVerifier) key(ctx context.Context, kid string) (crypto.PublicKey, string, error) {
	if pub, alg, fresh, _ := v.lookup(kid); fresh {
		return pub, alg, nil
	}
	err := v.refresh(ctx)
	if errors.Is(err, errRefreshSkipped) {
		v.mu.Lock()
		err = v.lastErr // nil if the last fetch succeeded
		v.mu.Unlock()
	}
	if pub, alg, _, usable := v.lookup(kid); usable {
		return pub, alg, nil // fresh, or stale within MaxJWKSStale
	}
	switch {
	case err != nil && !v.haveKeys():
		return nil, "", fmt.Errorf("%w: %w", ErrJWKSFetch, err)
	case err != nil:
		return nil, "", fmt.Errorf("%w: %.100q (refresh failed: %w)", ErrUnknownKeyID, kid, err)
	case !v.haveKeys():
		return nil, "", fmt.Errorf("%w: no keys cached", ErrJWKSFetch)
	}
	return nil, "", fmt.Errorf("%w: %.100q", ErrUnknownKeyID, kid)
}

// lookup reports the cached key for kid: fresh if the cache has not
// expired, usable if it has not been stale for longer than MaxJWKSStale.
func (v *JWKSVerifier) lookup(kid string) (pub crypto.PublicKey, alg string, fresh, usable bool) {
	now := v.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	pub, ok := v.keys[kid]
	if !ok || !now.Before(v.freshUntil.Add(MaxJWKSStale)) {
		return nil, "", false, false
	}
	return pub, v.keyAlgs[kid], now.Before(v.freshUntil), true
}

// haveKeys reports whether the cache holds keys within their stale window.
func (v *JWKSVerifier) haveKeys() bool {
	now := v.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.keys != nil && now.Before(v.freshUntil.Add(MaxJWKSStale))
}

// refresh fetches the JWKS unless a fetch is in flight (then it waits for
// that one) or the last counted fetch began less than the minimum refresh
// interval ago (then it returns errRefreshSkipped).
func (v *JWKSVerifier) refresh(ctx context.Context) error {
	v.mu.Lock()
	if c := v.inflight; c != nil {
		v.mu.Unlock()
		select {
		case <-c.done:
			return c.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	start := v.now()
	if !v.lastAttempt.IsZero() && start.Sub(v.lastAttempt) < v.minRefresh {
		v.mu.Unlock()
		return errRefreshSkipped
	}
	c := &fetchCall{done: make(chan struct{})}
	v.inflight = c
	v.mu.Unlock()

	keys, algs, ttl, err := v.fetch(ctx)

	v.mu.Lock()
	if err == nil || ctx.Err() == nil {
		// A fetch abandoned by its caller does not count against the
		// rate limit; one that the endpoint failed does.
		v.lastAttempt = start
	}
	if err == nil {
		v.keys, v.keyAlgs, v.freshUntil, v.lastErr = keys, algs, start.Add(ttl), nil
	} else {
		v.lastErr = err
	}
	v.inflight = nil
	c.err = err
	v.mu.Unlock()
	close(c.done)
	return err
}

// fetch downloads and parses the JWKS. It returns the usable keys by kid,
// their declared algorithms and the cache lifetime.
func (v *JWKSVerifier) fetch(ctx context.Context) (map[string]crypto.PublicKey, map[string]string, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.url, nil)
	if err != nil {
		return nil, nil, 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // allow connection reuse
		return nil, nil, 0, fmt.Errorf("status %d from jwks endpoint", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, v.maxSize+1))
	if err != nil {
		return nil, nil, 0, fmt.Errorf("read jwks: %w", err)
	}
	if int64(len(data)) > v.maxSize {
		return nil, nil, 0, fmt.Errorf("jwks larger than %d bytes", v.maxSize)
	}
	var set JWKS
	if err := strictUnmarshal(data, &set); err != nil || set.Keys == nil {
		return nil, nil, 0, errors.New("response is not a JWKS")
	}
	keys := make(map[string]crypto.PublicKey, len(set.Keys))
	algs := make(map[string]string, len(set.Keys))
	for _, k := range set.Keys {
		if _, dup := keys[k.Kid]; dup || k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if k.Alg != "" {
			if _, ok := algKeyType[k.Alg]; !ok {
				continue // a key for an algorithm we never accept
			}
		}
		pub, err := k.PublicKey()
		if err != nil {
			continue
		}
		keys[k.Kid] = pub
		if k.Alg != "" {
			algs[k.Kid] = k.Alg
		}
	}
	if len(keys) == 0 {
		return nil, nil, 0, fmt.Errorf("jwks has no usable key (of %d)", len(set.Keys))
	}
	return keys, algs, cacheTTL(resp.Header.Values("Cache-Control"), v.minRefresh), nil
}

// cacheTTL derives the JWKS cache lifetime from Cache-Control.
func cacheTTL(cacheControl []string, minTTL time.Duration) time.Duration {
	ttl := DefaultJWKSCacheTTL
	for _, line := range cacheControl {
		for _, d := range strings.Split(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return minTTL
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
				if err == nil && n >= 0 {
					ttl = time.Duration(min(n, int64(MaxJWKSCacheTTL/time.Second))) * time.Second
				}
			}
		}
	}
	return min(max(ttl, minTTL), MaxJWKSCacheTTL)
}
