package webhook

// Interoperability with independent implementations (test-only
// dependencies): the Standard Webhooks reference Go library and
// github.com/golang-jwt/jwt/v5.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestInteropStandardWebhooksVectors(t *testing.T) {
	t.Parallel()
	for _, vec := range loadHMACVectors(t) {
		if !vec.Signed || len(vec.Secrets) != 1 {
			continue
		}
		wh, err := standardwebhooks.NewWebhook(vec.Secrets[0])
		if err != nil {
			t.Fatal(err)
		}
		got, err := wh.Sign(vec.ID, unixOf(t, vec.Timestamp), []byte(vec.Body))
		if err != nil {
			t.Fatal(err)
		}
		if got != vec.Signature {
			t.Errorf("%s: reference library signs %q, vector says %q", vec.Name, got, vec.Signature)
		}
	}
}

func TestInteropStandardWebhooks(t *testing.T) {
	t.Parallel()
	// The reference library checks timestamps against time.Now, so these
	// messages are signed now.
	for i := range 20 {
		rawA, _ := NewSecret()
		rawB, _ := NewSecret()
		secA, _ := ParseSecret(rawA)
		secB, _ := ParseSecret(rawB)
		body := make([]byte, i*37)
		_, _ = rand.Read(body)
		id := fmt.Sprintf("msg_%d", i)
		now := time.Now()
		ts := strconv.FormatInt(now.Unix(), 10)

		// Theirs signs, ours verifies.
		theirs, err := standardwebhooks.NewWebhook(rawA)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := theirs.Sign(id, now, body)
		if err != nil {
			t.Fatal(err)
		}
		if sig != Sign(secA, id, now, body) {
			t.Fatalf("signatures differ: %s vs %s", sig, Sign(secA, id, now, body))
		}
		ours, err := NewVerifier([]string{rawB, rawA})
		if err != nil {
			t.Fatal(err)
		}
		if err := ours.Verify(hdr(id, ts, sig), body); err != nil {
			t.Fatalf("ours rejects theirs: %v", err)
		}

		// Ours signs for a rotation overlap; theirs verifies with either key.
		h := hdr(id, ts, SignAll([]Secret{secA, secB}, id, now, body))
		for _, raw := range []string{rawA, rawB} {
			wh, _ := standardwebhooks.NewWebhook(raw)
			if err := wh.Verify(body, h); err != nil {
				t.Fatalf("theirs rejects ours: %v", err)
			}
		}
		// And both reject a tampered body.
		bad := append([]byte("x"), body...)
		if theirs.Verify(bad, h) == nil || ours.Verify(h, bad) == nil {
			t.Fatal("tampered body accepted")
		}
	}
}

// jwksKeyfunc is a golang-jwt Keyfunc that looks the key up in the JWKS
// served at url, using only our exported JWK conversion.
func jwksKeyfunc(t *testing.T, client *http.Client, url string) jwt.Keyfunc {
	return func(tok *jwt.Token) (any, error) {
		resp, err := client.Get(url)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var set JWKS
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			return nil, err
		}
		kid, _ := tok.Header["kid"].(string)
		k, ok := set.Key(kid)
		if !ok {
			return nil, fmt.Errorf("kid %q not in jwks", kid)
		}
		return k.PublicKey()
	}
}

func TestInteropGolangJWTVerifiesOurs(t *testing.T) {
	t.Parallel()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for _, key := range []crypto.Signer{testRSAKey(), ec, ed} {
		signer, err := NewJWTSigner("interop", key)
		if err != nil {
			t.Fatal(err)
		}
		f := setupJWTWith(t, signer)
		token := f.sign(t, f.claims("msg_1"))
		var claims jwt.MapClaims
		parsed, err := jwt.ParseWithClaims(token, &claims, jwksKeyfunc(t, f.srv.Client(), f.srv.URL),
			jwt.WithValidMethods([]string{signer.Algorithm()}),
			jwt.WithAudience(testAudience), jwt.WithIssuer(testIssuer),
			jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
			jwt.WithTimeFunc(f.clock.Now))
		if err != nil || !parsed.Valid {
			t.Fatalf("%s: golang-jwt rejects our token: %v", signer.Algorithm(), err)
		}
		if claims["jti"] != "msg_1" || claims["body_sha256"] != BodyHash(f.body) || claims["type"] != "batch.succeeded" {
			t.Fatalf("claims = %v", claims)
		}
		if parsed.Header["kid"] != "interop" || parsed.Header["typ"] != "JWT" {
			t.Fatalf("header = %v", parsed.Header)
		}
	}
}

func TestInteropGolangJWTVerifiesVector(t *testing.T) {
	t.Parallel()
	vec := loadJWSVectors(t).Longhook
	pub := ed25519.NewKeyFromSeed(b64dec(t, vec.Seed)).Public()
	_, err := jwt.Parse(vec.Token, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithAudience(vec.Audience),
		jwt.WithTimeFunc(func() time.Time { return time.Unix(vec.Now, 0) }))
	if err != nil {
		t.Fatal(err)
	}
}

func TestInteropOursVerifiesGolangJWT(t *testing.T) {
	t.Parallel()
	f := setupJWT(t, WithAlgorithms(AlgRS256, AlgES256))
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecJWK, _ := NewJWK("ec-interop", &ec.PublicKey)
	f.srv.setKeys(t, f.signer.PublicJWK(), ecJWK)
	now := f.clock.Now()
	claims := jwt.MapClaims{
		"iss":         testIssuer,
		"aud":         []string{"https://someone.else", testAudience},
		"iat":         now.Unix(),
		"nbf":         now.Unix(),
		"exp":         now.Add(5 * time.Minute).Unix(),
		"jti":         "msg_42",
		"body_sha256": BodyHash(f.body),
		"type":        "video.generated",
		"data":        map[string]any{"id": "operations/v1"},
	}
	for _, tc := range []struct {
		method jwt.SigningMethod
		kid    string
		key    any
	}{
		{jwt.SigningMethodRS256, testKid, testRSAKey()},
		{jwt.SigningMethodES256, "ec-interop", ec},
	} {
		tok := jwt.NewWithClaims(tc.method, claims)
		tok.Header["kid"] = tc.kid
		s, err := tok.SignedString(tc.key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := f.verify(s, "msg_42", f.body)
		if err != nil {
			t.Fatalf("%s: we reject golang-jwt's token: %v", tc.method.Alg(), err)
		}
		if c.Type != "video.generated" || string(c.Data) != `{"id":"operations/v1"}` || c.Audience != testAudience {
			t.Fatalf("claims = %+v", c)
		}
	}

	// golang-jwt will happily sign HS256 with the RSA public key bytes; we
	// must refuse such a token outright.
	pubJWK := f.signer.PublicJWK()
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	hs.Header["kid"] = testKid
	s, err := hs.SignedString(b64dec(t, pubJWK.N))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.v.Verify(context.Background(), hdr("msg_42", "", s), f.body)
	wantErr(t, err, ErrAlgorithmNotAllowed)
}
