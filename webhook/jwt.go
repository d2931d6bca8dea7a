package webhook

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// maxTokenLen bounds the compact JWS accepted from a header; it matches
// net/http's default limit on all request headers together.
const maxTokenLen = 1 << 20

// A NumericDate is a JWT time: whole seconds since the Unix epoch
// (RFC 7519 §2). Zero means absent. When decoding, fractional seconds are
// truncated.
type NumericDate int64

// NewNumericDate returns t as a NumericDate.
func NewNumericDate(t time.Time) NumericDate { return NumericDate(t.Unix()) }

// Time returns d as a [time.Time].
func (d NumericDate) Time() time.Time { return time.Unix(int64(d), 0) }

// UnmarshalJSON accepts a JSON number, integral or not, and null.
func (d *NumericDate) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*d = NumericDate(n)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("numeric date %.20q is not a number", s)
	}
	switch {
	case f >= math.MaxInt64:
		*d = math.MaxInt64
	case f <= math.MinInt64:
		*d = math.MinInt64
	default:
		*d = NumericDate(f)
	}
	return nil
}

// Claims is the payload of a dynamic-webhook JWT: the registered claims
// that bind the token to a sender, a receiver, a time window, a message id
// and a body, plus the event itself, so that a receiver that only decodes
// the token still gets the event.
type Claims struct {
	Issuer  string `json:"iss,omitempty"` // the sender's public base URL
	Subject string `json:"sub,omitempty"` // the job's resource name
	// Audience is the receiver the token is for (the delivery URI unless
	// the job set an audience). It is encoded as a string; a token whose
	// "aud" is an array is accepted by the verifier, and Audience then
	// holds the entry that matched.
	Audience  string      `json:"aud,omitempty"`
	IssuedAt  NumericDate `json:"iat,omitempty"` // when this attempt was signed
	ExpiresAt NumericDate `json:"exp,omitempty"` // IssuedAt + 5 minutes
	ID        string      `json:"jti,omitempty"` // equals the webhook-id header
	// BodySHA256 is [BodyHash] of the raw request body.
	BodySHA256 string `json:"body_sha256,omitempty"`
	// Project is the id of the sender's project (tenant) that published
	// the event. A longhook server sets it from the publishing API key;
	// the publisher cannot choose it. Receivers pin it with [WithProject].
	Project string `json:"project,omitempty"`

	// The event envelope, as in the request body.
	Type      string          `json:"type,omitempty"`      // e.g. "batch.succeeded"
	Version   string          `json:"version,omitempty"`   // envelope version, "v1"
	Timestamp string          `json:"timestamp,omitempty"` // RFC 3339, when the event happened
	Data      json.RawMessage `json:"data,omitempty"`      // the event's data object, verbatim
}

// BodyHash returns the "body_sha256" claim for a raw body: unpadded
// base64url of its SHA-256.
func BodyHash(body []byte) string {
	sum := sha256.Sum256(body)
	return b64url.EncodeToString(sum[:])
}

// A JWTSigner signs dynamic-webhook tokens with one private key. It is
// immutable and safe for concurrent use.
type JWTSigner struct {
	alg    string
	key    crypto.Signer
	header string // base64url of the JOSE header
	jwk    JWK
}

// NewJWTSigner returns a signer for key, published under key id kid. The
// algorithm follows from the key: RSA (at least 2048 bits) signs RS256,
// ECDSA P-256 signs ES256, Ed25519 signs EdDSA. key may be any
// [crypto.Signer], such as a KMS or HSM handle, whose Public method returns
// one of those key types.
func NewJWTSigner(kid string, key crypto.Signer) (*JWTSigner, error) {
	if kid == "" {
		return nil, fmt.Errorf("%w: empty key id", ErrInvalidKey)
	}
	if key == nil {
		return nil, fmt.Errorf("%w: nil signer", ErrInvalidKey)
	}
	jwk, err := NewJWK(kid, key.Public())
	if err != nil {
		return nil, err
	}
	hdr, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{jwk.Alg, kid, "JWT"})
	if err != nil {
		return nil, fmt.Errorf("webhook: encode jws header: %w", err)
	}
	return &JWTSigner{alg: jwk.Alg, key: key, header: b64url.EncodeToString(hdr), jwk: jwk}, nil
}

// Algorithm returns the JWS algorithm: [AlgRS256], [AlgES256] or
// [AlgEdDSA].
func (s *JWTSigner) Algorithm() string { return s.alg }

// PublicJWK returns the public key to publish in the sender's JWKS.
func (s *JWTSigner) PublicJWK() JWK { return s.jwk }

// Sign returns c as a compact JWS with the header
// {"alg":...,"kid":...,"typ":"JWT"}. Sign fills in nothing: the caller sets
// every claim, typically Issuer, Audience, IssuedAt, ExpiresAt (IssuedAt
// plus 5 minutes), ID (the webhook-id), BodySHA256 ([BodyHash] of the exact
// bytes sent) and the event fields.
func (s *JWTSigner) Sign(c Claims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("webhook: encode claims: %w", err)
	}
	return s.SignPayload(payload)
}

// SignPayload returns a compact JWS whose payload is claims, verbatim: a
// JSON object the caller encoded itself (Sign encodes [Claims] and calls
// it). It is for senders that already hold parts of the claims as JSON,
// such as the event envelope, and would otherwise decode and re-encode
// them for every token.
func (s *JWTSigner) SignPayload(claims []byte) (string, error) {
	if len(claims) < 2 || claims[0] != '{' || claims[len(claims)-1] != '}' {
		return "", errors.New("webhook: claims must be a JSON object")
	}
	n := len(s.header) + 1 + b64url.EncodedLen(len(claims))
	buf := make([]byte, 0, n+1+b64url.EncodedLen(512))
	buf = append(buf, s.header...)
	buf = append(buf, '.')
	buf = b64url.AppendEncode(buf, claims)
	sig, err := s.signInput(buf)
	if err != nil {
		return "", fmt.Errorf("webhook: sign jwt: %w", err)
	}
	buf = append(buf, '.')
	buf = b64url.AppendEncode(buf, sig)
	return string(buf), nil
}

func (s *JWTSigner) signInput(input []byte) ([]byte, error) {
	if s.alg == AlgEdDSA {
		return s.key.Sign(rand.Reader, input, crypto.Hash(0))
	}
	digest := sha256.Sum256(input)
	sig, err := s.key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil || s.alg != AlgES256 {
		return sig, err
	}
	// crypto.Signer returns ASN.1 DER; JWS wants r || s, 32 bytes each.
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) != 0 {
		return nil, errors.New("ecdsa signer returned a malformed signature")
	}
	if rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.BitLen() > 256 || rs.S.BitLen() > 256 {
		return nil, errors.New("ecdsa signer returned an out-of-range signature")
	}
	out := make([]byte, 64)
	rs.R.FillBytes(out[:32])
	rs.S.FillBytes(out[32:])
	return out, nil
}

// jws is a parsed compact JWS whose signature is not yet verified.
type jws struct {
	header  jwsHeader
	input   string // header.payload, the signing input
	payload []byte // decoded
	sig     []byte // decoded
}

type jwsHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit"`
}

// parseJWS splits and decodes a compact JWS. It checks syntax only: the
// algorithm, key and signature are checked by the caller.
func parseJWS(token string) (*jws, error) {
	if len(token) > maxTokenLen {
		return nil, fmt.Errorf("%w: token longer than %d bytes", ErrMalformed, maxTokenLen)
	}
	h, rest, ok1 := strings.Cut(token, ".")
	p, s, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(s, '.') >= 0 || h == "" || p == "" {
		return nil, fmt.Errorf("%w: token is not a compact JWS (header.payload.signature)", ErrMalformed)
	}
	hdr, err := b64url.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("%w: jws header is not base64url", ErrMalformed)
	}
	t := &jws{input: token[:len(h)+1+len(p)]}
	if err := strictUnmarshal(hdr, &t.header); err != nil {
		return nil, fmt.Errorf("%w: jws header: %v", ErrMalformed, err)
	}
	if t.header.Crit != nil {
		// RFC 7515 §4.1.11: extensions we do not understand must be refused.
		return nil, fmt.Errorf("%w: jws header has unsupported \"crit\"", ErrMalformed)
	}
	if t.header.Typ != "" && !strings.EqualFold(t.header.Typ, "JWT") {
		return nil, fmt.Errorf("%w: jws typ %.40q is not JWT", ErrMalformed, t.header.Typ)
	}
	if t.payload, err = b64url.DecodeString(p); err != nil {
		return nil, fmt.Errorf("%w: jws payload is not base64url", ErrMalformed)
	}
	if t.sig, err = b64url.DecodeString(s); err != nil {
		return nil, fmt.Errorf("%w: jws signature is not base64url", ErrMalformed)
	}
	return t, nil
}

// strictUnmarshal decodes a single JSON object into v.
func strictUnmarshal(data []byte, v any) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return errors.New("not a JSON object")
	}
	return json.Unmarshal(data, v)
}

// claimNames are the top-level members wireClaims decodes.
var claimNames = []string{"iss", "sub", "aud", "iat", "exp", "nbf", "jti", "body_sha256", "project",
	"type", "version", "timestamp", "data"}

// unmarshalClaims decodes a token's claims strictly: a JSON object whose
// members are not repeated, and whose known claims are spelled exactly
// (encoding/json would match "PROJECT" to "project" and let the last of
// two "aud" members win, so two verifiers could read one token
// differently).
func unmarshalClaims(data []byte, v any) error {
	if err := strictUnmarshal(data, v); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // the '{'
		return err
	}
	seen := make(map[string]bool, 16)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := t.(string)
		if seen[name] {
			return fmt.Errorf("claim %.40q appears twice", name)
		}
		seen[name] = true
		for _, n := range claimNames {
			if name != n && strings.EqualFold(name, n) {
				return fmt.Errorf("claim %.40q is not spelled %q", name, n)
			}
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

// verifySignature checks sig over input with pub under alg. The caller has
// already matched alg to the key type.
func verifySignature(alg string, pub crypto.PublicKey, input string, sig []byte) error {
	ok := false
	switch alg {
	case AlgRS256:
		if k, isRSA := pub.(*rsa.PublicKey); isRSA {
			digest := sha256.Sum256([]byte(input))
			ok = rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil
		}
	case AlgES256:
		if k, isEC := pub.(*ecdsa.PublicKey); isEC && len(sig) == 64 {
			digest := sha256.Sum256([]byte(input))
			r := new(big.Int).SetBytes(sig[:32])
			s := new(big.Int).SetBytes(sig[32:])
			ok = ecdsa.Verify(k, digest[:], r, s)
		}
	case AlgEdDSA:
		if k, isEd := pub.(ed25519.PublicKey); isEd {
			ok = ed25519.Verify(k, []byte(input), sig)
		}
	}
	if !ok {
		return fmt.Errorf("%w: jwt signature does not verify", ErrInvalidSignature)
	}
	return nil
}

// wireClaims decodes Claims with an "aud" that may be a string or an array,
// and the "nbf" claim, which the verifier checks but Claims does not carry.
// Its outer fields shadow the embedded ones for encoding/json.
type wireClaims struct {
	Claims
	Audience  audience    `json:"aud"`
	NotBefore NumericDate `json:"nbf"`
}

// audience is the RFC 7519 "aud": a string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = many
	return nil
}
