package sdktest

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// verifyJWT verifies a dynamic delivery's webhook-signature with
// golang-jwt (independently of longhook's own verifier): RS256 with the
// key of the server's /.well-known/jwks.json its kid names, issuer the
// server, audience the receiver's URI, jti the webhook-id and body_sha256
// the SHA-256 of the raw body. It returns the claims.
func verifyJWT(t *testing.T, s *server, client *http.Client, d delivery, audience string) jwt.MapClaims {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Get(s.url + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kid, Kty, N, E string } `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	keyOf := func(tok *jwt.Token) (any, error) {
		for _, k := range set.Keys {
			if k.Kid == tok.Header["kid"] && k.Kty == "RSA" {
				n, err1 := base64.RawURLEncoding.DecodeString(k.N)
				e, err2 := base64.RawURLEncoding.DecodeString(k.E)
				if err1 != nil || err2 != nil {
					return nil, jwt.ErrTokenUnverifiable
				}
				return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
			}
		}
		return nil, jwt.ErrTokenUnverifiable
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(d.header.Get("webhook-signature"), claims, keyOf,
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(s.url), jwt.WithAudience(audience), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("JWT of %s: %v", d.body, err)
	}
	sum := sha256.Sum256(d.body)
	if claims["body_sha256"] != base64.RawURLEncoding.EncodeToString(sum[:]) || claims["jti"] != d.header.Get("webhook-id") {
		t.Fatalf("JWT claims do not bind the delivery: %v", claims)
	}
	return claims
}
