// Package jwks manages the server's asymmetric signing keys for dynamic
// (per-job) webhooks: it creates them, seals the private keys at rest,
// rotates them on a schedule or on demand, publishes the public halves at
// /.well-known/jwks.json, and signs the per-attempt JWTs.
//
// Key lifecycle: a new key becomes current at once; the previous current key
// is retired at that moment and stays published until every token it signed
// has expired (token lifetime + margin), then it is deleted.
package jwks

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/webhook"
)

// Store is what the manager needs of core.Store.
type Store interface {
	SigningKeys(ctx context.Context) ([]core.SigningKey, error)
	AddSigningKey(ctx context.Context, k core.SigningKey, retiredExpire time.Time) error
	DeleteExpiredSigningKeys(ctx context.Context, now time.Time) (int, error)
}

// Config configures a Manager.
type Config struct {
	Store  Store
	Cipher core.Cipher
	Clock  core.Clock
	Logger *slog.Logger
	// Issuer is the iss claim: the server's public base URL.
	Issuer string
	// Algorithm of new keys: RS256, ES256 or EdDSA; "" (serve without
	// --jwt-algorithm) makes each new key with the current key's
	// algorithm, RS256 for the first. A default of RS256 switched an ES256
	// or EdDSA server (its key made by jwks rotate --jwt-algorithm) back to
	// RS256 at its next scheduled rotation, breaking receivers that accept
	// only the algorithm they were set up with.
	Algorithm string
	// RotateEvery is the scheduled rotation period (default 30 days).
	RotateEvery time.Duration
	// TokenTTL is each token's lifetime (default 5 min).
	TokenTTL time.Duration
	// Margin keeps a retired key published beyond TokenTTL (default 10 min).
	Margin time.Duration
	// MaxAge is the JWKS Cache-Control max-age (default 5 min).
	MaxAge time.Duration
}

func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = core.SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RotateEvery == 0 {
		c.RotateEvery = 30 * 24 * time.Hour
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = 5 * time.Minute
	}
	if c.Margin == 0 {
		c.Margin = 10 * time.Minute
	}
	if c.MaxAge == 0 {
		c.MaxAge = 5 * time.Minute
	}
	return c
}

// Manager holds the keys. It is safe for concurrent use.
type Manager struct {
	cfg Config

	mu        sync.RWMutex
	current   *webhook.JWTSigner
	createdAt time.Time
	doc       []byte // the JWKS JSON

	tokens tokenCache
}

// New loads the keys, creating the first one if the store has none.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	cfg = cfg.withDefaults()
	switch cfg.Algorithm {
	case "", webhook.AlgRS256, "ES256", "EdDSA":
	default:
		return nil, fmt.Errorf("jwks: unsupported algorithm %q (RS256, ES256, EdDSA)", cfg.Algorithm)
	}
	m := &Manager{cfg: cfg, tokens: tokenCache{m: map[string]cachedToken{}}}
	if err := m.Reload(ctx); err != nil {
		return nil, err
	}
	if m.Current() == "" {
		if _, err := m.Rotate(ctx); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Current returns the kid of the signing key ("" if none).
func (m *Manager) Current() string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.current == nil {
		return ""
	}
	return m.current.PublicJWK().Kid
}

// Rotate creates a new current key; the previous one stays published until
// its tokens have expired. It returns the new kid.
func (m *Manager) Rotate(ctx context.Context) (string, error) {
	now := m.cfg.Clock.Now()
	alg := m.cfg.Algorithm
	if alg == "" {
		m.mu.RLock()
		if m.current != nil {
			alg = m.current.Algorithm()
		}
		m.mu.RUnlock()
	}
	priv, err := generate(alg)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("jwks: %w", err)
	}
	sealed, err := m.cfg.Cipher.Seal(der)
	if err != nil {
		return "", fmt.Errorf("jwks: %w", err)
	}
	kid := "lh-" + core.NewSortableID(now)[:16]
	signer, err := webhook.NewJWTSigner(kid, priv)
	if err != nil {
		return "", fmt.Errorf("jwks: %w", err)
	}
	pub, err := json.Marshal(signer.PublicJWK())
	if err != nil {
		return "", err
	}
	k := core.SigningKey{ID: kid, Algorithm: signer.Algorithm(), Sealed: sealed, PublicJWK: pub, CreateTime: now}
	if err := m.cfg.Store.AddSigningKey(ctx, k, now.Add(m.cfg.TokenTTL+m.cfg.Margin)); err != nil {
		return "", fmt.Errorf("jwks: store key: %w", err)
	}
	m.cfg.Logger.Info("jwks.rotated", slog.String("kid", kid), slog.String("alg", signer.Algorithm()))
	return kid, m.Reload(ctx)
}

func generate(alg string) (crypto.Signer, error) {
	switch alg {
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	default:
		return rsa.GenerateKey(rand.Reader, 2048)
	}
}

// Reload reads the keys from the store (another process may have rotated).
func (m *Manager) Reload(ctx context.Context) error {
	keys, err := m.cfg.Store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("jwks: load keys: %w", err)
	}
	now := m.cfg.Clock.Now()
	m.mu.RLock()
	prev := m.current
	m.mu.RUnlock()
	var doc webhook.JWKS
	var current *webhook.JWTSigner
	var created time.Time
	for _, k := range keys { // newest first
		if !k.ExpireTime.IsZero() && !now.Before(k.ExpireTime) {
			continue
		}
		var jwk webhook.JWK
		if err := json.Unmarshal(k.PublicJWK, &jwk); err != nil {
			return fmt.Errorf("jwks: key %s: %w", k.ID, err)
		}
		doc.Keys = append(doc.Keys, jwk)
		if current == nil && k.RetireTime.IsZero() && prev != nil && prev.PublicJWK().Kid == k.ID {
			current, created = prev, k.CreateTime // unchanged: skip the key parse
		}
		if current == nil && k.RetireTime.IsZero() {
			der, err := m.cfg.Cipher.Open(k.Sealed)
			if err != nil {
				return fmt.Errorf("jwks: key %s: %w", k.ID, err)
			}
			priv, err := x509.ParsePKCS8PrivateKey(der)
			if err != nil {
				return fmt.Errorf("jwks: key %s: %w", k.ID, err)
			}
			signer, ok := priv.(crypto.Signer)
			if !ok {
				return fmt.Errorf("jwks: key %s is not a signer", k.ID)
			}
			if current, err = webhook.NewJWTSigner(k.ID, signer); err != nil {
				return fmt.Errorf("jwks: key %s: %w", k.ID, err)
			}
			created = k.CreateTime
		}
	}
	if doc.Keys == nil {
		doc.Keys = []webhook.JWK{}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.current, m.createdAt, m.doc = current, created, body
	m.mu.Unlock()
	return nil
}

// Maintain is the periodic task: reload, rotate when the current key is
// older than RotateEvery, and delete keys whose tokens have all expired.
func (m *Manager) Maintain(ctx context.Context, now time.Time) error {
	if err := m.Reload(ctx); err != nil {
		return err
	}
	m.mu.RLock()
	due := m.current == nil || now.Sub(m.createdAt) >= m.cfg.RotateEvery
	m.mu.RUnlock()
	if due {
		if _, err := m.Rotate(ctx); err != nil {
			return err
		}
	}
	if n, err := m.cfg.Store.DeleteExpiredSigningKeys(ctx, now); err != nil {
		return err
	} else if n > 0 {
		return m.Reload(ctx)
	}
	return nil
}

// ServeHTTP serves the JWKS document.
func (m *Manager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, `{"error":{"code":405,"message":"method not allowed","status":"INVALID_ARGUMENT"}}`, http.StatusMethodNotAllowed)
		return
	}
	m.mu.RLock()
	doc := m.doc
	m.mu.RUnlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(m.cfg.MaxAge.Seconds())))
	_, _ = w.Write(doc)
}

// SignDynamic returns the webhook-signature JWT for an attempt of c to uri.
// Every project's tokens share the keys and the issuer, so the token names
// c's project in the "project" claim (from the delivery row, which the
// publisher cannot set) and its "aud" is always uri or uri's origin
// (core.DynamicAudience): receivers pin both.
// A token signed for an earlier attempt of the same delivery is reused
// while it has more than a minute of validity left, so the retries at 5 s,
// 30 s and 2 min cost no RSA operation.
func (m *Manager) SignDynamic(_ context.Context, c *core.Claimed, uri string, now time.Time) (string, error) {
	m.mu.RLock()
	signer := m.current
	m.mu.RUnlock()
	if signer == nil {
		return "", fmt.Errorf("jwks: no signing key")
	}
	kid := signer.PublicJWK().Kid
	if tok, ok := m.tokens.get(c.ID, kid, now); ok {
		return tok, nil
	}
	aud := core.DynamicAudience(c.Dynamic, uri)
	sub := c.Subject
	if sub == "" {
		sub = "events/" + c.EventID
	}
	exp := now.Add(m.cfg.TokenTTL)
	claims, err := dynamicClaims(webhook.Claims{
		Issuer: m.cfg.Issuer, Subject: sub, Audience: aud,
		IssuedAt: webhook.NewNumericDate(now), ExpiresAt: webhook.NewNumericDate(exp),
		ID: c.ID, BodySHA256: webhook.BodyHash(c.Payload), Project: c.ProjectID,
	}, c.Payload)
	if err != nil {
		return "", err
	}
	tok, err := signer.SignPayload(claims)
	if err != nil {
		return "", fmt.Errorf("jwks: sign: %w", err)
	}
	m.tokens.put(c.ID, cachedToken{token: tok, kid: kid, exp: exp}, now)
	return tok, nil
}

// envelopePrefix starts every stored payload: core.Envelope writes exactly
// {"type","version","timestamp","data"}, the event members of the claims.
var envelopePrefix = []byte(`{"type":`)

// dynamicClaims returns the token claims: c's registered claims followed by
// the members of the event envelope payload. The envelope is spliced in as
// stored (one RSA signature costs ~1 ms; decoding and re-encoding a large
// data object on top of it is waste); a payload in any other shape is
// decoded and only type, version, timestamp and data are kept.
func dynamicClaims(c webhook.Claims, payload []byte) ([]byte, error) {
	head, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("jwks: claims: %w", err)
	}
	if bytes.HasPrefix(payload, envelopePrefix) && payload[len(payload)-1] == '}' {
		out := make([]byte, 0, len(head)+len(payload))
		out = append(out, head[:len(head)-1]...)
		if len(head) > len("{}") {
			out = append(out, ',')
		}
		return append(out, payload[1:]...), nil
	}
	var env struct {
		Type      string          `json:"type"`
		Version   string          `json:"version"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(payload, &env); err != nil {
		return nil, fmt.Errorf("jwks: payload: %w", err)
	}
	c.Type, c.Version, c.Timestamp, c.Data = env.Type, env.Version, env.Timestamp, env.Data
	out, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("jwks: claims: %w", err)
	}
	return out, nil
}

type cachedToken struct {
	token string
	kid   string
	exp   time.Time
}

// tokenCache keeps the last token per delivery while it can be reused.
// Tokens too close to expiry are swept out whenever the cache has doubled
// since the last sweep (at least tokenSweepMin entries), so it holds
// about a token lifetime's worth of deliveries; tokenCacheMax bounds it
// whatever the lifetime.
type tokenCache struct {
	mu      sync.Mutex
	m       map[string]cachedToken
	sweepAt int
}

const (
	tokenSweepMin = 4096
	tokenCacheMax = 50000
)

const tokenReuseMargin = time.Minute

func (t *tokenCache) get(id, kid string, now time.Time) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.m[id]
	if !ok || c.kid != kid || c.exp.Sub(now) < tokenReuseMargin {
		return "", false
	}
	return c.token, true
}

func (t *tokenCache) put(id string, c cachedToken, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= max(t.sweepAt, tokenSweepMin) {
		for k, v := range t.m {
			if v.exp.Sub(now) < tokenReuseMargin {
				delete(t.m, k) // never reused (see get)
			}
		}
		if len(t.m) >= tokenCacheMax {
			clear(t.m)
		}
		t.sweepAt = 2 * len(t.m)
	}
	t.m[id] = c
}

// RunReloader reloads the keys every interval until ctx ends, so a rotation
// made by another process (longhook jwks rotate, another instance) takes
// effect here.
func (m *Manager) RunReloader(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := m.Reload(ctx); err != nil && ctx.Err() == nil {
				m.cfg.Logger.Warn("jwks.reload_failed", slog.String("error", err.Error()))
			}
		}
	}
}
