package e2e

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/longhook/longhook/webhook"
)

// hmacResults is the outcome of one HMAC message under the three
// independent verifiers, each with a single secret.
type hmacResults struct {
	ours, refGo, npm error
}

// all returns the three errors with their verifier names.
func (r hmacResults) all() map[string]error {
	return map[string]error{"webhook.Verifier": r.ours, "standardwebhooks (Go)": r.refGo, "standardwebhooks (npm)": r.npm}
}

// verifyHMAC verifies a received static delivery with secret alone, in our
// webhook package, the reference Go library and the npm package.
func verifyHMAC(t testing.TB, r received, secret string) hmacResults {
	t.Helper()
	var res hmacResults
	v, err := webhook.NewVerifier([]string{secret})
	if err != nil {
		t.Fatalf("webhook.NewVerifier: %v", err)
	}
	res.ours = v.Verify(r.Header, r.Body)
	ref, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("standardwebhooks.NewWebhook: %v", err)
	}
	res.refGo = ref.Verify(r.Body, r.Header)
	c := newNodeCase(r)
	c.Secret = secret
	_, res.npm = runNode(t, "standardwebhooks.cjs", c)
	return res
}

// requireVerified ends the test unless every verifier accepted.
func (r hmacResults) requireVerified(t testing.TB, what string) {
	t.Helper()
	for name, err := range r.all() {
		if err != nil {
			t.Errorf("%s: %s rejected: %v", what, name, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// requireNoMatch ends the test unless every verifier rejected with its
// "no matching signature" error.
func (r hmacResults) requireNoMatch(t testing.TB, what string) {
	t.Helper()
	if !errors.Is(r.ours, webhook.ErrNoMatchingSignature) {
		t.Errorf("%s: webhook.Verifier: got %v, want ErrNoMatchingSignature", what, r.ours)
	}
	if !errors.Is(r.refGo, standardwebhooks.ErrNoMatchingSignature) {
		t.Errorf("%s: standardwebhooks (Go): got %v, want ErrNoMatchingSignature", what, r.refGo)
	}
	if !errors.Is(r.npm, errRejected) || !containsFold(r.npm.Error(), "No matching signature") {
		t.Errorf("%s: standardwebhooks (npm): got %v, want \"No matching signature found\"", what, r.npm)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// fetchJWKS GETs a JWKS and returns it with the response headers.
func fetchJWKS(t testing.TB, hc *http.Client, url string) (webhook.JWKS, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v: %s", url, resp.StatusCode, err, raw)
	}
	var set webhook.JWKS
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("GET %s: not a JWKS: %v: %s", url, err, raw)
	}
	return set, resp.Header
}

// kids lists the key ids of a JWKS.
func kids(set webhook.JWKS) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

// rsaKey builds an RSA public key from a JWK's n and e by hand, so the
// golang-jwt check does not depend on our JWK parser.
func rsaKey(k webhook.JWK) (*rsa.PublicKey, error) {
	if k.Kty != "RSA" {
		return nil, fmt.Errorf("kid %s: kty %q, want RSA", k.Kid, k.Kty)
	}
	n, err := base64.RawURLEncoding.DecodeString(k.N)
	if err != nil {
		return nil, fmt.Errorf("kid %s: n: %w", k.Kid, err)
	}
	e, err := base64.RawURLEncoding.DecodeString(k.E)
	if err != nil {
		return nil, fmt.Errorf("kid %s: e: %w", k.Kid, err)
	}
	exp := new(big.Int).SetBytes(e)
	if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 {
		return nil, fmt.Errorf("kid %s: bad exponent", k.Kid)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}, nil
}

// golangJWTVerify verifies a dynamic delivery with github.com/golang-jwt/jwt/v5
// and keys from set: RS256 only, iss, aud, exp required, and the
// body_sha256 and jti bindings. now fixes the verification time (zero =
// real clock).
func golangJWTVerify(r received, set webhook.JWKS, issuer, audience string, now time.Time) (jwt.MapClaims, error) {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(issuer), jwt.WithAudience(audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
	}
	if !now.IsZero() {
		opts = append(opts, jwt.WithTimeFunc(func() time.Time { return now }))
	}
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(opts...).ParseWithClaims(r.Header.Get("webhook-signature"), claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		k, ok := set.Key(kid)
		if !ok {
			return nil, fmt.Errorf("kid %q not in the JWKS", kid)
		}
		return rsaKey(k)
	})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(r.Body)
	if got := claims["body_sha256"]; got != base64.RawURLEncoding.EncodeToString(sum[:]) {
		return nil, fmt.Errorf("body_sha256 %v does not match the body", got)
	}
	if got := claims["jti"]; got != r.Header.Get("webhook-id") {
		return nil, fmt.Errorf("jti %v != webhook-id %q", got, r.Header.Get("webhook-id"))
	}
	return claims, nil
}

// tokenKid returns the kid of the JWS in a delivery's webhook-signature.
func tokenKid(t testing.TB, r received) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(r.Header.Get("webhook-signature"), jwt.MapClaims{})
	if err != nil {
		t.Fatalf("webhook-signature is not a JWT: %v", err)
	}
	kid, _ := tok.Header["kid"].(string)
	return kid
}

// tokenIssued is the iat claim of a dynamic delivery's token, read
// without verifying it.
func tokenIssued(t testing.TB, r received) time.Time {
	t.Helper()
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(r.Header.Get("webhook-signature"), &claims); err != nil {
		t.Fatalf("webhook-signature is not a JWT: %v", err)
	}
	if claims.IssuedAt == nil {
		t.Fatalf("token has no iat")
	}
	return claims.IssuedAt.Time
}

// jwtCase is the node case for a dynamic delivery.
func jwtCase(r received, jwksURL, issuer, audience string) nodeCase {
	c := newNodeCase(r)
	c.JWKSURL, c.Issuer, c.Audience = jwksURL, issuer, audience
	return c
}

// containsFold reports whether s contains sub, ignoring case.
func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
