package webhook

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"
)

type jwsVectors struct {
	RFC []struct {
		Name    string            `json:"name"`
		Alg     string            `json:"alg"`
		JWK     JWK               `json:"jwk"`
		Private map[string]string `json:"private"`
		Token   string            `json:"token"`
		Valid   bool              `json:"valid"`
	} `json:"rfc"`
	Longhook struct {
		Kid       string `json:"kid"`
		Seed      string `json:"seed"`
		Issuer    string `json:"issuer"`
		Audience  string `json:"audience"`
		Now       int64  `json:"now"`
		WebhookID string `json:"webhook_id"`
		Body      string `json:"body"`
		Claims    Claims `json:"claims"`
		Token     string `json:"token"`
	} `json:"longhook"`
}

func loadJWSVectors(t testing.TB) jwsVectors {
	t.Helper()
	data, err := os.ReadFile("testdata/jws_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v jwsVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func b64dec(t testing.TB, s string) []byte {
	t.Helper()
	b, err := b64url.DecodeString(s)
	if err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return b
}

// TestJWSRFCVectors checks signature verification, and deterministic
// signing, against the published RFC examples.
func TestJWSRFCVectors(t *testing.T) {
	t.Parallel()
	for _, vec := range loadJWSVectors(t).RFC {
		t.Run(vec.Name, func(t *testing.T) {
			t.Parallel()
			pub, err := vec.JWK.PublicKey()
			if err != nil {
				t.Fatal(err)
			}
			tok, err := parseJWS(vec.Token)
			if err != nil {
				t.Fatal(err)
			}
			if tok.header.Alg != vec.Alg {
				t.Fatalf("alg = %q", tok.header.Alg)
			}
			err = verifySignature(vec.Alg, pub, tok.input, tok.sig)
			if vec.Valid {
				wantErr(t, err, nil)
			} else {
				wantErr(t, err, ErrInvalidSignature)
			}
			if vec.Private == nil {
				return
			}
			var priv crypto.Signer
			switch vec.Alg {
			case AlgEdDSA:
				priv = ed25519.NewKeyFromSeed(b64dec(t, vec.Private["d"]))
			case AlgRS256:
				k := &rsa.PrivateKey{
					PublicKey: *pub.(*rsa.PublicKey),
					D:         new(big.Int).SetBytes(b64dec(t, vec.Private["d"])),
					Primes: []*big.Int{
						new(big.Int).SetBytes(b64dec(t, vec.Private["p"])),
						new(big.Int).SetBytes(b64dec(t, vec.Private["q"])),
					},
				}
				k.Precompute()
				priv = k
			}
			s, err := NewJWTSigner("rfc", priv)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := s.signInput([]byte(tok.input))
			if err != nil {
				t.Fatal(err)
			}
			if got := b64url.EncodeToString(sig); got != b64url.EncodeToString(tok.sig) {
				t.Fatalf("re-signed = %s, want the RFC's signature", got)
			}
		})
	}
}

// TestLonghookJWTVector pins the exact token of a dynamic webhook.
func TestLonghookJWTVector(t *testing.T) {
	t.Parallel()
	vec := loadJWSVectors(t).Longhook
	signer, err := NewJWTSigner(vec.Kid, ed25519.NewKeyFromSeed(b64dec(t, vec.Seed)))
	if err != nil {
		t.Fatal(err)
	}
	if vec.Claims.BodySHA256 != BodyHash([]byte(vec.Body)) {
		t.Fatalf("vector body_sha256 %s != BodyHash %s", vec.Claims.BodySHA256, BodyHash([]byte(vec.Body)))
	}
	token, err := signer.Sign(vec.Claims)
	if err != nil {
		t.Fatal(err)
	}
	if token != vec.Token {
		t.Fatalf("Sign =\n%s\nwant\n%s", token, vec.Token)
	}
	// SignPayload signs the claims as given: the vector's own encoding of
	// them gives the vector's token.
	payload, err := b64url.DecodeString(strings.Split(vec.Token, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	if token, err := signer.SignPayload(payload); err != nil || token != vec.Token {
		t.Fatalf("SignPayload = %s, %v\nwant %s", token, err, vec.Token)
	}
	srv := newJWKSServer(t, signer.PublicJWK())
	v, err := NewJWKSVerifier(srv.URL, vec.Issuer, vec.Audience, WithAlgorithms(AlgEdDSA),
		WithHTTPClient(srv.Client()), WithClock(func() time.Time { return time.Unix(vec.Now, 0) }))
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(context.Background(), hdr(vec.WebhookID, "", vec.Token), []byte(vec.Body))
	if err != nil {
		t.Fatal(err)
	}
	if c.Type != "batch.succeeded" || c.Subject != "batches/abc123" || !strings.Contains(string(c.Data), "files/batch-abc123") {
		t.Fatalf("claims = %+v", c)
	}
}

func TestJWKRoundTrip(t *testing.T) {
	t.Parallel()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ed, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, pub := range []crypto.PublicKey{&testRSAKey().PublicKey, &ec.PublicKey, ed} {
		k, err := NewJWK("kid", pub)
		if err != nil {
			t.Fatal(err)
		}
		if k.Use != "sig" || k.Kid != "kid" || algKeyType[k.Alg] != k.Kty {
			t.Fatalf("JWK = %+v", k)
		}
		var back JWK
		if err := json.Unmarshal(mustJSON(t, k), &back); err != nil {
			t.Fatal(err)
		}
		got, err := back.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		if !got.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
			t.Fatalf("%T did not round-trip", pub)
		}
	}
	set := JWKS{Keys: []JWK{{Kid: "a"}, {Kid: "b", Kty: "EC"}}}
	if k, ok := set.Key("b"); !ok || k.Kty != "EC" {
		t.Fatal("JWKS.Key(b)")
	}
	if _, ok := set.Key("c"); ok {
		t.Fatal("JWKS.Key(c)")
	}
}

func TestJWKInvalid(t *testing.T) {
	t.Parallel()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good, _ := NewJWK("k", &ec.PublicKey)
	rsaGood, _ := NewJWK("r", &testRSAKey().PublicKey)
	small := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 1023), E: 65537}
	smallJWK := JWK{Kty: "RSA", N: b64url.EncodeToString(small.N.Bytes()), E: "AQAB"}
	for name, k := range map[string]JWK{
		"unknown kty":      {Kty: "oct"},
		"P-384":            {Kty: "EC", Crv: "P-384", X: good.X, Y: good.Y},
		"EC off curve":     {Kty: "EC", Crv: "P-256", X: good.X, Y: good.X},
		"EC short x":       {Kty: "EC", Crv: "P-256", X: good.X[:20], Y: good.Y},
		"Ed448":            {Kty: "OKP", Crv: "Ed448", X: good.X},
		"Ed25519 short":    {Kty: "OKP", Crv: "Ed25519", X: "AAAA"},
		"RSA 1024":         smallJWK,
		"RSA e even":       {Kty: "RSA", N: rsaGood.N, E: "AQAA"},
		"RSA e 1":          {Kty: "RSA", N: rsaGood.N, E: "AQ"},
		"RSA e empty":      {Kty: "RSA", N: rsaGood.N},
		"RSA e huge":       {Kty: "RSA", N: rsaGood.N, E: "AQAAAAE"},
		"RSA n not base64": {Kty: "RSA", N: "!!", E: "AQAB"},
		"RSA padded n":     {Kty: "RSA", N: rsaGood.N + "=", E: "AQAB"},
	} {
		if _, err := k.PublicKey(); err == nil {
			t.Errorf("%s: PublicKey succeeded", name)
		} else {
			wantErr(t, err, ErrInvalidKey)
		}
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, pub := range map[string]crypto.PublicKey{"small RSA": small, "P-384": &p384.PublicKey, "nil": nil, "bytes": []byte{1}} {
		if _, err := NewJWK("k", pub); err == nil {
			t.Errorf("NewJWK(%s) succeeded", name)
		} else {
			wantErr(t, err, ErrInvalidKey)
		}
	}
}

// opaqueSigner hides the concrete key type, like a KMS handle does.
type opaqueSigner struct{ crypto.Signer }

func TestJWTSignerOpaqueSigner(t *testing.T) {
	t.Parallel()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, key := range []crypto.Signer{ec, testRSAKey()} {
		s, err := NewJWTSigner("kms", opaqueSigner{key})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := s.Sign(Claims{Issuer: "x"})
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := parseJWS(tok)
		if err != nil {
			t.Fatal(err)
		}
		if err := verifySignature(s.Algorithm(), key.Public(), parsed.input, parsed.sig); err != nil {
			t.Fatal(err)
		}
		if parsed.header.Kid != "kms" || parsed.header.Typ != "JWT" || parsed.header.Alg != s.Algorithm() {
			t.Fatalf("header = %+v", parsed.header)
		}
	}
}

// failingSigner returns a fixed signature or error.
type failingSigner struct {
	crypto.Signer
	sig []byte
	err error
}

func (f failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return f.sig, f.err
}

func TestJWTSignerErrors(t *testing.T) {
	t.Parallel()
	if _, err := NewJWTSigner("", testRSAKey()); err == nil {
		t.Error("empty kid accepted")
	}
	if _, err := NewJWTSigner("k", nil); err == nil {
		t.Error("nil key accepted")
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := NewJWTSigner("k", p384); err == nil {
		t.Error("P-384 key accepted")
	}
	s, _ := NewJWTSigner("k", testRSAKey())
	if _, err := s.Sign(Claims{Data: json.RawMessage("{not json")}); err == nil {
		t.Error("invalid Data accepted")
	}
	for _, p := range []string{"", "{", "[]", `"x"`, "null"} {
		if _, err := s.SignPayload([]byte(p)); err == nil {
			t.Errorf("SignPayload(%q) accepted", p)
		}
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, fs := range map[string]failingSigner{
		"signer error":    {Signer: ec, err: io.ErrUnexpectedEOF},
		"not DER":         {Signer: ec, sig: []byte{1, 2, 3}},
		"zero r":          {Signer: ec, sig: []byte{0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01}},
		"trailing data":   {Signer: ec, sig: []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00}},
		"r over 256 bits": {Signer: ec, sig: append([]byte{0x30, 0x26, 0x02, 0x21, 0x01}, append(make([]byte, 32), 0x02, 0x01, 0x01)...)},
	} {
		s, err := NewJWTSigner("k", fs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Sign(Claims{}); err == nil {
			t.Errorf("%s: Sign succeeded", name)
		}
	}
}

func TestNumericDate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]NumericDate{
		"1674087231":    1674087231,
		"1674087231.9":  1674087231,
		"1.6e9":         1600000000,
		"null":          0,
		"1e300":         NumericDate(1<<63 - 1),
		"-1e300":        NumericDate(-1 << 63),
		"-5":            -5,
		"0":             0,
		"1674087231.00": 1674087231,
	} {
		var d NumericDate
		if err := json.Unmarshal([]byte(in), &d); err != nil || d != want {
			t.Errorf("Unmarshal(%s) = %d, %v; want %d", in, d, err, want)
		}
	}
	for _, in := range []string{`"1674087231"`, "true", "{}"} {
		var d NumericDate
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", in)
		}
	}
	now := time.Unix(1674087231, 0)
	if NewNumericDate(now).Time() != now {
		t.Error("NumericDate round trip")
	}
}

func TestBodyHash(t *testing.T) {
	t.Parallel()
	// SHA-256 of the empty string, base64url without padding.
	if got := BodyHash(nil); got != "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU" {
		t.Fatalf("BodyHash(nil) = %s", got)
	}
}

func TestParseJWS(t *testing.T) {
	t.Parallel()
	h := b64url.EncodeToString([]byte(`{"alg":"RS256","kid":"k"}`))
	p := b64url.EncodeToString([]byte(`{}`))
	for tok, ok := range map[string]bool{
		h + "." + p + ".c2ln":              true,
		h + "." + p + ".":                  true, // empty signature fails later, at verification
		h + "." + p:                        false,
		"." + p + ".c2ln":                  false,
		h + "..c2ln":                       false,
		h + "." + p + ".c2ln.x":            false,
		h + "." + p + ".c2l+":              false,
		"eyJhbGciOiJSUzI1NiJ9x." + p + ".": false,
		b64url.EncodeToString([]byte(`"RS256"`)) + "." + p + ".":           false,
		b64url.EncodeToString([]byte(`{"alg":1}`)) + "." + p + ".":         false,
		b64url.EncodeToString([]byte(`{"alg":"RS256"} x`)) + "." + p + ".": false,
		strings.Repeat("a", maxTokenLen+1):                                 false,
	} {
		_, err := parseJWS(tok)
		if ok != (err == nil) {
			t.Errorf("parseJWS(%.60q) = %v, want ok=%v", tok, err, ok)
		}
		if err != nil {
			wantErr(t, err, ErrMalformed)
		}
	}
}
