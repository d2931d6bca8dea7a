package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Defaults used when the corresponding [Option] is not given.
const (
	// DefaultTolerance is how far an HMAC webhook-timestamp may differ from
	// the receiver's clock, in either direction (the Standard Webhooks
	// recommendation).
	DefaultTolerance = 5 * time.Minute

	// DefaultLeeway is the clock-skew allowance applied to a JWT's "exp",
	// "iat" and "nbf" claims.
	DefaultLeeway = time.Minute

	// DefaultMinRefreshInterval is the shortest time between two JWKS
	// fetches triggered by unknown key ids or failed fetches, so a flood of
	// forged tokens cannot turn the receiver into a load generator against
	// the sender's JWKS endpoint.
	DefaultMinRefreshInterval = time.Minute

	// DefaultJWKSCacheTTL is how long a fetched JWKS is used when the
	// response carries no Cache-Control max-age.
	DefaultJWKSCacheTTL = 5 * time.Minute

	// MaxJWKSCacheTTL caps a Cache-Control max-age, so a rotated key is
	// always picked up within a day.
	MaxJWKSCacheTTL = 24 * time.Hour

	// MaxJWKSStale is how long past their cache lifetime cached keys keep
	// verifying tokens while every refresh fails (endpoint down or serving
	// garbage). After that the verifier fails closed with [ErrJWKSFetch].
	MaxJWKSStale = 24 * time.Hour

	// DefaultMaxJWKSSize bounds the bytes read from the JWKS endpoint.
	DefaultMaxJWKSSize = 1 << 20

	// defaultFetchTimeout bounds one JWKS fetch made with the default HTTP
	// client.
	defaultFetchTimeout = 10 * time.Second
)

// An Option configures a [Verifier] or a [JWKSVerifier]. The same options
// may be passed to both; an option that does not apply to a verifier is
// ignored by it (for example [WithHTTPClient] by the HMAC [Verifier]).
// Invalid values make the constructor return an error.
type Option func(*config)

type config struct {
	tolerance   time.Duration
	now         func() time.Time
	client      *http.Client
	algs        []string
	minRefresh  time.Duration
	maxJWKSSize int64
	project     string
	errs        []error
}

// WithTolerance sets how far a timestamp may be from the receiver's clock.
// For the HMAC [Verifier] it bounds the webhook-timestamp header in both
// directions (default [DefaultTolerance]); for the [JWKSVerifier] it is the
// leeway on "exp", "iat" and "nbf" (default [DefaultLeeway]). It must not be
// negative.
func WithTolerance(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.errs = append(c.errs, fmt.Errorf("tolerance %v is negative", d))
			return
		}
		c.tolerance = d
	}
}

// WithClock replaces [time.Now] as the source of the current time, for
// tests and for replaying recorded traffic. It must not be nil.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now == nil {
			c.errs = append(c.errs, errors.New("clock is nil"))
			return
		}
		c.now = now
	}
}

// WithHTTPClient sets the client used to fetch the JWKS. The default client
// has a 10 second timeout. Give your own to add a proxy, mTLS or a
// different timeout; its timeout also bounds how long a Verify that needs
// a fetch can take, besides the context.
func WithHTTPClient(client *http.Client) Option {
	return func(c *config) {
		if client == nil {
			c.errs = append(c.errs, errors.New("http client is nil"))
			return
		}
		c.client = client
	}
}

// WithAlgorithms sets the JWS algorithms the [JWKSVerifier] accepts, from
// [AlgRS256], [AlgES256] and [AlgEdDSA]. The default is RS256 only. "none"
// and the HMAC algorithms (HS256, ...) are never accepted: with a public
// JWKS they would let anyone forge tokens.
func WithAlgorithms(algs ...string) Option {
	return func(c *config) {
		if len(algs) == 0 {
			c.errs = append(c.errs, errors.New("no algorithms given"))
			return
		}
		for _, a := range algs {
			if _, ok := algKeyType[a]; !ok {
				c.errs = append(c.errs, fmt.Errorf("%w: %q (supported: RS256, ES256, EdDSA)", ErrAlgorithmNotAllowed, a))
				return
			}
		}
		c.algs = append([]string(nil), algs...)
	}
}

// WithMinRefreshInterval sets the shortest time between two JWKS fetches
// that the [JWKSVerifier] makes outside the normal cache expiry (on an
// unknown "kid", or after a failed fetch). Default
// [DefaultMinRefreshInterval]; it must be positive.
func WithMinRefreshInterval(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("min refresh interval %v is not positive", d))
			return
		}
		c.minRefresh = d
	}
}

// WithMaxJWKSSize bounds the bytes the [JWKSVerifier] reads from the JWKS
// endpoint; a larger response is a fetch failure. Default
// [DefaultMaxJWKSSize] (1 MiB); it must be positive.
func WithMaxJWKSSize(n int64) Option {
	return func(c *config) {
		if n <= 0 {
			c.errs = append(c.errs, fmt.Errorf("max jwks size %d is not positive", n))
			return
		}
		c.maxJWKSSize = n
	}
}

// WithProject pins the [JWKSVerifier] to one project of a multi-tenant
// sender: a token is accepted only if its "project" claim equals id. A
// longhook server signs every project's tokens with the same keys and
// issuer and sets "project" itself (the publisher cannot choose it), so a
// receiver of such a server must pin its project; otherwise a key holder
// of another project can send it genuine tokens. Senders that set no
// "project" claim (Gemini) cannot be pinned. id must not be empty.
func WithProject(id string) Option {
	return func(c *config) {
		if id == "" {
			c.errs = append(c.errs, errors.New("project is empty"))
			return
		}
		c.project = id
	}
}

// newConfig applies opts over the defaults. defTol is the default
// tolerance of the calling verifier.
func newConfig(defTol time.Duration, opts []Option) (config, error) {
	c := config{
		tolerance:   defTol,
		now:         time.Now,
		algs:        []string{AlgRS256},
		minRefresh:  DefaultMinRefreshInterval,
		maxJWKSSize: DefaultMaxJWKSSize,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c, errors.Join(c.errs...)
}
