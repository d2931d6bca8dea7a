package webhook

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testIssuer   = "https://longhook.example"
	testAudience = "https://receiver.example/hooks"
	testKid      = "rsa-2026-05"
)

// jwksServer serves a JWKS whose body, status and Cache-Control the test
// changes at will, and counts requests.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64

	mu           sync.Mutex
	body         []byte
	status       int
	cacheControl string
}

func newJWKSServer(t testing.TB, keys ...JWK) *jwksServer {
	t.Helper()
	s := &jwksServer{status: http.StatusOK}
	s.setKeys(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		body, status, cc := s.body, s.status, s.cacheControl
		s.mu.Unlock()
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(t testing.TB, keys ...JWK) {
	s.set(mustJSON(t, JWKS{Keys: keys}), http.StatusOK)
}

func (s *jwksServer) set(body []byte, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.status = body, status
}

func (s *jwksServer) setCacheControl(cc string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cacheControl = cc
}

// jwtFixture is a sender (signer) and a receiver (verifier) wired through a
// JWKS server, with a fake clock.
type jwtFixture struct {
	signer *JWTSigner
	srv    *jwksServer
	clock  *fakeClock
	v      *JWKSVerifier
	body   []byte
}

func setupJWT(t testing.TB, opts ...Option) *jwtFixture {
	t.Helper()
	signer, err := NewJWTSigner(testKid, testRSAKey())
	if err != nil {
		t.Fatal(err)
	}
	return setupJWTWith(t, signer, opts...)
}

func setupJWTWith(t testing.TB, signer *JWTSigner, opts ...Option) *jwtFixture {
	t.Helper()
	f := &jwtFixture{
		signer: signer,
		srv:    newJWKSServer(t, signer.PublicJWK()),
		clock:  newFakeClock(time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC)),
		body:   []byte(`{"type":"batch.succeeded","version":"v1","timestamp":"2026-05-05T12:00:00Z","data":{"id":"batches/abc123"}}`),
	}
	opts = append([]Option{WithClock(f.clock.Now), WithHTTPClient(f.srv.Client())}, opts...)
	var err error
	f.v, err = NewJWKSVerifier(f.srv.URL+"/.well-known/jwks.json", testIssuer, testAudience, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// claims returns valid claims for f.body and webhook-id id.
func (f *jwtFixture) claims(id string) Claims {
	now := f.clock.Now()
	return Claims{
		Issuer:     testIssuer,
		Subject:    "batches/abc123",
		Audience:   testAudience,
		IssuedAt:   NewNumericDate(now),
		ExpiresAt:  NewNumericDate(now.Add(5 * time.Minute)),
		ID:         id,
		BodySHA256: BodyHash(f.body),
		Type:       "batch.succeeded",
		Version:    "v1",
		Timestamp:  "2026-05-05T12:00:00Z",
		Data:       json.RawMessage(`{"id":"batches/abc123"}`),
	}
}

func (f *jwtFixture) sign(t testing.TB, c Claims) string {
	t.Helper()
	tok, err := f.signer.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *jwtFixture) verify(token, id string, body []byte) (*Claims, error) {
	return f.v.Verify(context.Background(), hdr(id, "1778068800", token), body)
}

// rawToken assembles a JWS from arbitrary header and claims, signed by fn.
func rawToken(t testing.TB, header map[string]any, claims any, sign func(input []byte) []byte) string {
	t.Helper()
	input := b64url.EncodeToString(mustJSON(t, header)) + "." + b64url.EncodeToString(mustJSON(t, claims))
	return input + "." + b64url.EncodeToString(sign([]byte(input)))
}

func TestJWKSVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	f := setupJWT(t)
	want := f.claims("msg_1")
	got, err := f.verify(f.sign(t, want), "msg_1", f.body)
	if err != nil {
		t.Fatal(err)
	}
	if string(mustJSON(t, got)) != string(mustJSON(t, want)) {
		t.Fatalf("claims = %+v\nwant %+v", got, want)
	}
}

func TestJWKSVerifyAlgorithms(t *testing.T) {
	t.Parallel()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		alg string
		key crypto.Signer
	}{{AlgES256, ec}, {AlgEdDSA, ed}, {AlgRS256, testRSAKey()}} {
		t.Run(tc.alg, func(t *testing.T) {
			t.Parallel()
			signer, err := NewJWTSigner("k-"+tc.alg, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if signer.Algorithm() != tc.alg {
				t.Fatalf("Algorithm = %s", signer.Algorithm())
			}
			f := setupJWTWith(t, signer, WithAlgorithms(tc.alg))
			if _, err := f.verify(f.sign(t, f.claims("msg_1")), "msg_1", f.body); err != nil {
				t.Fatal(err)
			}
			// The default allow-list is RS256 only.
			if tc.alg != AlgRS256 {
				f2 := setupJWTWith(t, signer)
				_, err := f2.verify(f2.sign(t, f2.claims("msg_1")), "msg_1", f2.body)
				wantErr(t, err, ErrAlgorithmNotAllowed)
			}
		})
	}
}

func TestJWKSVerifyNegative(t *testing.T) {
	t.Parallel()
	f := setupJWT(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecJWK, _ := NewJWK("ec-1", &ec.PublicKey)
	ecJWK.Alg = "" // no alg member, so only the key type can catch confusion
	f.srv.setKeys(t, f.signer.PublicJWK(), ecJWK)
	fAll := setupJWTWith(t, f.signer, WithAlgorithms(AlgRS256, AlgES256))
	fAll.srv.setKeys(t, f.signer.PublicJWK(), ecJWK)

	good := f.claims("msg_1")
	token := f.sign(t, good)
	pubDER, _ := x509.MarshalPKIXPublicKey(&testRSAKey().PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs256 := func(key []byte) func([]byte) []byte {
		return func(in []byte) []byte {
			m := hmac.New(sha256.New, key)
			m.Write(in)
			return m.Sum(nil)
		}
	}
	rsaSign := func(in []byte) []byte {
		d := sha256.Sum256(in)
		sig, _ := testRSAKey().Sign(rand.Reader, d[:], crypto.SHA256)
		return sig
	}
	with := func(mod func(c *Claims)) string {
		c := good
		mod(&c)
		return f.sign(t, c)
	}
	parts := strings.Split(token, ".")
	tampered := parts[0] + "." + b64url.EncodeToString(mustJSON(t, func() Claims { c := good; c.Subject = "batches/evil"; return c }())) + "." + parts[2]

	for _, tc := range []struct {
		name  string
		f     *jwtFixture
		token string
		id    string
		body  []byte
		want  error
	}{
		{"valid", f, token, "msg_1", f.body, nil},
		{"tampered body", f, token, "msg_1", append([]byte(nil), strings.Replace(string(f.body), "abc123", "abc124", 1)...), ErrBodyHash},
		{"tampered token", f, tampered, "msg_1", f.body, ErrInvalidSignature},
		{"tampered signature", f, token[:len(token)-4] + "AAAA", "msg_1", f.body, ErrInvalidSignature},
		{"wrong aud", f, with(func(c *Claims) { c.Audience = "https://other.example" }), "msg_1", f.body, ErrAudience},
		{"no aud", f, with(func(c *Claims) { c.Audience = "" }), "msg_1", f.body, ErrAudience},
		{"wrong iss", f, with(func(c *Claims) { c.Issuer = "https://evil.example" }), "msg_1", f.body, ErrIssuer},
		{"expired", f, with(func(c *Claims) { c.ExpiresAt = NewNumericDate(f.clock.Now().Add(-2 * time.Minute)) }), "msg_1", f.body, ErrTokenExpired},
		{"expired within leeway", f, with(func(c *Claims) { c.ExpiresAt = NewNumericDate(f.clock.Now().Add(-30 * time.Second)) }), "msg_1", f.body, nil},
		{"no exp", f, with(func(c *Claims) { c.ExpiresAt = 0 }), "msg_1", f.body, ErrTokenExpired},
		{"issued in the future", f, with(func(c *Claims) { c.IssuedAt = NewNumericDate(f.clock.Now().Add(2 * time.Minute)) }), "msg_1", f.body, ErrTokenNotYetValid},
		{"nbf in the future", f, rawToken(t, map[string]any{"alg": "RS256", "kid": testKid}, map[string]any{"iss": testIssuer, "aud": testAudience, "exp": f.clock.Now().Add(time.Hour).Unix(), "nbf": f.clock.Now().Add(time.Hour).Unix(), "jti": "msg_1", "body_sha256": BodyHash(f.body)}, rsaSign), "msg_1", f.body, ErrTokenNotYetValid},
		{"no body hash", f, with(func(c *Claims) { c.BodySHA256 = "" }), "msg_1", f.body, ErrBodyHash},
		{"jti mismatch", f, token, "msg_2", f.body, ErrTokenID},
		{"unknown kid", f, rawToken(t, map[string]any{"alg": "RS256", "kid": "nope"}, good, rsaSign), "msg_1", f.body, ErrUnknownKeyID},
		{"no kid", f, rawToken(t, map[string]any{"alg": "RS256"}, good, rsaSign), "msg_1", f.body, ErrUnknownKeyID},
		{"alg none", f, rawToken(t, map[string]any{"alg": "none", "kid": testKid}, good, func([]byte) []byte { return nil }), "msg_1", f.body, ErrAlgorithmNotAllowed},
		{"alg NONE", f, rawToken(t, map[string]any{"alg": "NONE", "kid": testKid}, good, func([]byte) []byte { return nil }), "msg_1", f.body, ErrAlgorithmNotAllowed},
		{"HS256 with the RSA public key PEM as secret", f, rawToken(t, map[string]any{"alg": "HS256", "kid": testKid, "typ": "JWT"}, good, hs256(pubPEM)), "msg_1", f.body, ErrAlgorithmNotAllowed},
		{"HS256 with the RSA modulus as secret", f, rawToken(t, map[string]any{"alg": "HS256", "kid": testKid}, good, hs256(testRSAKey().N.Bytes())), "msg_1", f.body, ErrAlgorithmNotAllowed},
		{"RS256 header naming an EC key", fAll, rawToken(t, map[string]any{"alg": "RS256", "kid": "ec-1"}, good, rsaSign), "msg_1", f.body, ErrAlgorithmNotAllowed},
		{"ES256 header naming an RSA key", fAll, rawToken(t, map[string]any{"alg": "ES256", "kid": testKid}, good, rsaSign), "msg_1", f.body, ErrAlgorithmNotAllowed},
		{"crit header", f, rawToken(t, map[string]any{"alg": "RS256", "kid": testKid, "crit": []string{"b64"}, "b64": false}, good, rsaSign), "msg_1", f.body, ErrMalformed},
		{"typ not JWT", f, rawToken(t, map[string]any{"alg": "RS256", "kid": testKid, "typ": "at+jwt"}, good, rsaSign), "msg_1", f.body, ErrMalformed},
		{"claims not an object", f, rawToken(t, map[string]any{"alg": "RS256", "kid": testKid}, []int{1}, rsaSign), "msg_1", f.body, ErrMalformed},
		{"not a JWS", f, "v2.abc", "msg_1", f.body, ErrMalformed},
		{"four parts", f, token + ".x", "msg_1", f.body, ErrMalformed},
		{"padded base64", f, parts[0] + "=." + parts[1] + "." + parts[2], "msg_1", f.body, ErrMalformed},
		{"missing token", f, "", "msg_1", f.body, ErrMissingHeader},
		{"missing id", f, token, "", f.body, ErrMissingHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.f.verify(tc.token, tc.id, tc.body)
			wantErr(t, err, tc.want)
		})
	}
}

func TestJWKSAudienceArray(t *testing.T) {
	t.Parallel()
	f := setupJWT(t)
	rsaSign := func(in []byte) []byte {
		d := sha256.Sum256(in)
		sig, _ := testRSAKey().Sign(rand.Reader, d[:], crypto.SHA256)
		return sig
	}
	claims := func(aud any) map[string]any {
		return map[string]any{"iss": testIssuer, "aud": aud, "exp": f.clock.Now().Add(time.Minute).Unix(), "jti": "msg_1", "body_sha256": BodyHash(f.body)}
	}
	hdr := map[string]any{"alg": "RS256", "kid": testKid}
	c, err := f.verify(rawToken(t, hdr, claims([]string{"a", testAudience}), rsaSign), "msg_1", f.body)
	if err != nil || c.Audience != testAudience {
		t.Fatalf("array aud: %v, %+v", err, c)
	}
	_, err = f.verify(rawToken(t, hdr, claims([]string{"a", "b"}), rsaSign), "msg_1", f.body)
	wantErr(t, err, ErrAudience)
	_, err = f.verify(rawToken(t, hdr, claims(42), rsaSign), "msg_1", f.body)
	wantErr(t, err, ErrMalformed)
}

func TestNewJWKSVerifierErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		url, iss, aud string
		opts          []Option
	}{
		"relative url":     {"/jwks.json", testIssuer, testAudience, nil},
		"ftp url":          {"ftp://x/jwks", testIssuer, testAudience, nil},
		"no issuer":        {"https://x/jwks", "", testAudience, nil},
		"no audience":      {"https://x/jwks", testIssuer, "", nil},
		"HS256 allowed":    {"https://x/jwks", testIssuer, testAudience, []Option{WithAlgorithms("HS256")}},
		"none allowed":     {"https://x/jwks", testIssuer, testAudience, []Option{WithAlgorithms(AlgRS256, "none")}},
		"no algorithms":    {"https://x/jwks", testIssuer, testAudience, []Option{WithAlgorithms()}},
		"nil client":       {"https://x/jwks", testIssuer, testAudience, []Option{WithHTTPClient(nil)}},
		"zero refresh":     {"https://x/jwks", testIssuer, testAudience, []Option{WithMinRefreshInterval(0)}},
		"zero max size":    {"https://x/jwks", testIssuer, testAudience, []Option{WithMaxJWKSSize(0)}},
		"negative leeway":  {"https://x/jwks", testIssuer, testAudience, []Option{WithTolerance(-1)}},
		"every error here": {"https://x/jwks", testIssuer, testAudience, []Option{WithTolerance(-1), WithClock(nil)}},
	} {
		if _, err := NewJWKSVerifier(tc.url, tc.iss, tc.aud, tc.opts...); err == nil {
			t.Errorf("%s: NewJWKSVerifier succeeded", name)
		}
	}
}

// TestJWKSProjectPin (issue 13, defect 1): a verifier pinned with
// WithProject accepts only tokens naming that project; a token of another
// project, or with none, fails with ErrProject. An unpinned verifier
// accepts both (a Gemini token has no project claim).
func TestJWKSProjectPin(t *testing.T) {
	t.Parallel()
	pinned := setupJWT(t, WithProject("proj-a"))
	open := setupJWTWith(t, pinned.signer)
	for _, tc := range []struct {
		project    string
		pinnedWant error
	}{{"proj-a", nil}, {"proj-b", ErrProject}, {"", ErrProject}, {"PROJ-A", ErrProject}} {
		c := pinned.claims("msg_p")
		c.Project = tc.project
		tok := pinned.sign(t, c)
		got, err := pinned.verify(tok, "msg_p", pinned.body)
		wantErr(t, err, tc.pinnedWant)
		if err == nil && got.Project != "proj-a" {
			t.Errorf("claims.Project = %q", got.Project)
		}
		if _, err := open.verify(tok, "msg_p", open.body); err != nil {
			t.Errorf("unpinned verifier, project %q: %v", tc.project, err)
		}
	}
	if _, err := NewJWKSVerifier("https://x/jwks", testIssuer, testAudience, WithProject("")); err == nil {
		t.Error("WithProject(\"\") accepted")
	}
}

// TestJWKSClaimsStrict: repeated claims and case variants of known claim
// names are malformed, so a token cannot read one way here and another way
// in a lenient verifier.
func TestJWKSClaimsStrict(t *testing.T) {
	t.Parallel()
	f := setupJWT(t, WithProject("proj-a"))
	rsaSign := func(in []byte) []byte {
		d := sha256.Sum256(in)
		sig, _ := testRSAKey().Sign(rand.Reader, d[:], crypto.SHA256)
		return sig
	}
	hdr := map[string]any{"alg": "RS256", "kid": testKid}
	exp := f.clock.Now().Add(time.Minute).Unix()
	base := `"iss":"` + testIssuer + `","aud":"` + testAudience + `","exp":` + strconv.FormatInt(exp, 10) +
		`,"jti":"msg_1","body_sha256":"` + BodyHash(f.body) + `"`
	for name, claims := range map[string]string{
		"ok":               `{` + base + `,"project":"proj-a"}`,
		"repeated project": `{` + base + `,"project":"proj-b","project":"proj-a"}`,
		"repeated aud":     `{"aud":"x",` + base + `,"project":"proj-a"}`,
		"upper PROJECT":    `{` + base + `,"PROJECT":"proj-a"}`,
		"mixed Aud":        `{"Aud":"` + testAudience + `","iss":"` + testIssuer + `","exp":` + strconv.FormatInt(exp, 10) + `,"jti":"msg_1","body_sha256":"` + BodyHash(f.body) + `","project":"proj-a"}`,
	} {
		input := b64url.EncodeToString(mustJSON(t, hdr)) + "." + b64url.EncodeToString([]byte(claims))
		tok := input + "." + b64url.EncodeToString(rsaSign([]byte(input)))
		_, err := f.verify(tok, "msg_1", f.body)
		if name == "ok" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

// TestAudienceErrorNamesToken: a token for another URI says which one, so a
// receiver behind a proxy sees the audience it should configure (the error
// named only the expected audience).
func TestAudienceErrorNamesToken(t *testing.T) {
	t.Parallel()
	f := setupJWT(t)
	c := f.claims("msg_1")
	c.Audience = "https://proxy.example/hooks"
	_, err := f.verify(f.sign(t, c), "msg_1", f.body)
	if !errors.Is(err, ErrAudience) || !strings.Contains(err.Error(), `got "https://proxy.example/hooks"`) || !strings.Contains(err.Error(), testAudience) {
		t.Errorf("error %v, want ErrAudience naming both audiences", err)
	}
}
