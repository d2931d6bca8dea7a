package webhook

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"math/big"
)

// JWS algorithms supported for dynamic webhooks.
const (
	// AlgRS256 is RSASSA-PKCS1-v1_5 with SHA-256, the default (and the one
	// Gemini documents). Keys must have at least 2048 bits.
	AlgRS256 = "RS256"
	// AlgES256 is ECDSA on P-256 with SHA-256.
	AlgES256 = "ES256"
	// AlgEdDSA is Ed25519.
	AlgEdDSA = "EdDSA"
)

// JWK key types (the "kty" member).
const (
	ktyRSA = "RSA"
	ktyEC  = "EC"
	ktyOKP = "OKP"
)

// algKeyType maps each supported algorithm to the only key type it may be
// used with. Checking it is what defeats algorithm-confusion attacks.
var algKeyType = map[string]string{
	AlgRS256: ktyRSA,
	AlgES256: ktyEC,
	AlgEdDSA: ktyOKP,
}

const (
	minRSABits = 2048
	maxRSABits = 8192 // bounds verification cost of keys from the network
)

// b64url is the unpadded base64url of JWS and JWK (RFC 7515 §2), strict so
// that every value has exactly one encoding.
var b64url = base64.RawURLEncoding.Strict()

// A JWK is a public JSON Web Key (RFC 7517) of one of the supported types:
// RSA (n, e), EC P-256 (crv, x, y) or OKP Ed25519 (crv, x). Private key
// members are never produced or read.
type JWK struct {
	Kty string `json:"kty"`           // key type: "RSA", "EC" or "OKP"
	Alg string `json:"alg,omitempty"` // intended algorithm, e.g. "RS256"
	Use string `json:"use,omitempty"` // "sig" for signing keys
	Kid string `json:"kid,omitempty"` // key id, matched against the JWS "kid"
	N   string `json:"n,omitempty"`   // RSA modulus, base64url big-endian
	E   string `json:"e,omitempty"`   // RSA public exponent, base64url big-endian
	Crv string `json:"crv,omitempty"` // curve: "P-256" or "Ed25519"
	X   string `json:"x,omitempty"`   // EC x coordinate or Ed25519 public key
	Y   string `json:"y,omitempty"`   // EC y coordinate
}

// A JWKS is a JSON Web Key Set, the document served at
// /.well-known/jwks.json: {"keys":[...]}.
type JWKS struct {
	Keys []JWK `json:"keys"` // the published keys, current and previous
}

// Key returns the key with the given key id.
func (s JWKS) Key(kid string) (JWK, bool) {
	for _, k := range s.Keys {
		if k.Kid == kid {
			return k, true
		}
	}
	return JWK{}, false
}

// NewJWK returns the public JWK of pub with "use":"sig", the algorithm the
// key implies ([AlgRS256], [AlgES256] or [AlgEdDSA]) and the given key id.
// pub must be an *rsa.PublicKey of at least 2048 bits, an *ecdsa.PublicKey
// on P-256 or an ed25519.PublicKey; otherwise the error wraps
// [ErrInvalidKey].
func NewJWK(kid string, pub crypto.PublicKey) (JWK, error) {
	alg, err := algForKey(pub)
	if err != nil {
		return JWK{}, err
	}
	k := JWK{Kty: algKeyType[alg], Alg: alg, Use: "sig", Kid: kid}
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		k.N = b64url.EncodeToString(pub.N.Bytes())
		k.E = b64url.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		b, err := pub.Bytes() // 0x04 || x || y
		if err != nil {
			return JWK{}, fmt.Errorf("%w: %v", ErrInvalidKey, err)
		}
		k.Crv = "P-256"
		k.X = b64url.EncodeToString(b[1:33])
		k.Y = b64url.EncodeToString(b[33:])
	case ed25519.PublicKey:
		k.Crv = "Ed25519"
		k.X = b64url.EncodeToString(pub)
	}
	return k, nil
}

// PublicKey returns the public key the JWK describes: an *rsa.PublicKey,
// an *ecdsa.PublicKey or an ed25519.PublicKey. It validates the key (RSA
// size between 2048 and 8192 bits and a sane exponent, EC point on the
// curve, exact coordinate lengths) and returns an error wrapping
// [ErrInvalidKey] otherwise. The "alg" and "use" members are not checked
// here; the [JWKSVerifier] checks them against each token.
func (k JWK) PublicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case ktyRSA:
		return k.rsaKey()
	case ktyEC:
		if k.Crv != "P-256" {
			return nil, fmt.Errorf("%w: EC curve %q (supported: P-256)", ErrInvalidKey, k.Crv)
		}
		x, errX := b64url.DecodeString(k.X)
		y, errY := b64url.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, fmt.Errorf("%w: EC x and y must be 32 bytes of base64url", ErrInvalidKey)
		}
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
		}
		return pub, nil
	case ktyOKP:
		if k.Crv != "Ed25519" {
			return nil, fmt.Errorf("%w: OKP curve %q (supported: Ed25519)", ErrInvalidKey, k.Crv)
		}
		x, err := b64url.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: Ed25519 x must be 32 bytes of base64url", ErrInvalidKey)
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("%w: key type %q (supported: RSA, EC, OKP)", ErrInvalidKey, k.Kty)
}

func (k JWK) rsaKey() (*rsa.PublicKey, error) {
	n, errN := b64url.DecodeString(k.N)
	e, errE := b64url.DecodeString(k.E)
	if errN != nil || errE != nil {
		return nil, fmt.Errorf("%w: RSA n and e must be base64url", ErrInvalidKey)
	}
	if len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("%w: RSA exponent must be 1 to 4 bytes", ErrInvalidKey)
	}
	var exp int64
	for _, b := range e {
		exp = exp<<8 | int64(b)
	}
	if exp < 3 || exp%2 == 0 || exp > 1<<31-1 {
		return nil, fmt.Errorf("%w: RSA exponent %d is not an odd number in [3, 2^31)", ErrInvalidKey, exp)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp)}
	if bits := pub.N.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("%w: RSA modulus of %d bits (want %d to %d)", ErrInvalidKey, bits, minRSABits, maxRSABits)
	}
	return pub, nil
}

// algForKey returns the JWS algorithm implied by a public key.
func algForKey(pub crypto.PublicKey) (string, error) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if pub == nil || pub.N == nil {
			break
		}
		if bits := pub.N.BitLen(); bits < minRSABits {
			return "", fmt.Errorf("%w: RSA key of %d bits (want at least %d)", ErrInvalidKey, bits, minRSABits)
		}
		return AlgRS256, nil
	case *ecdsa.PublicKey:
		if pub == nil || pub.Curve != elliptic.P256() {
			return "", fmt.Errorf("%w: ECDSA keys must be on P-256", ErrInvalidKey)
		}
		return AlgES256, nil
	case ed25519.PublicKey:
		if len(pub) != ed25519.PublicKeySize {
			break
		}
		return AlgEdDSA, nil
	}
	return "", fmt.Errorf("%w: unsupported public key type %T (want RSA, ECDSA P-256 or Ed25519)", ErrInvalidKey, pub)
}

// keyTypeOf returns the JWK "kty" of a parsed public key.
func keyTypeOf(pub crypto.PublicKey) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		return ktyRSA
	case *ecdsa.PublicKey:
		return ktyEC
	case ed25519.PublicKey:
		return ktyOKP
	}
	return ""
}
