package webhook

import "errors"

// Sentinel errors. Every error from a Verify method and from parsing a
// secret or key wraps one of them, so callers branch with [errors.Is] and
// keep the full message for logs (constructors report invalid options with
// plain errors):
//
//	if err := v.Verify(r.Header, body); err != nil {
//		switch {
//		case errors.Is(err, webhook.ErrTimestampTooOld):
//			// a replay, or a sender whose clock is far behind
//		case errors.Is(err, webhook.ErrInvalidSignature):
//			// wrong secret or tampered request
//		}
//		http.Error(w, "invalid webhook", http.StatusUnauthorized)
//		return
//	}
//
// The messages never contain secrets, keys, signatures or payloads.
var (
	// ErrMissingHeader reports that a required header (webhook-id,
	// webhook-timestamp or webhook-signature) is absent or empty. The
	// wrapping error names the header.
	ErrMissingHeader = errors.New("webhook: missing header")

	// ErrMalformed reports input that cannot be parsed: a timestamp that is
	// not decimal Unix seconds, a signature header without a single
	// "version,value" entry, a token that is not a compact JWS, or claims
	// that are not a JSON object.
	ErrMalformed = errors.New("webhook: malformed input")

	// ErrInvalidSignature reports that a signature did not verify. It is the
	// umbrella for both schemes: [ErrNoMatchingSignature] wraps it, so
	// errors.Is(err, ErrInvalidSignature) is true for every signature
	// failure, HMAC or JWT.
	ErrInvalidSignature = errors.New("webhook: invalid signature")

	// ErrNoMatchingSignature reports that no v1 entry of an HMAC signature
	// header matched any configured secret. It wraps [ErrInvalidSignature].
	ErrNoMatchingSignature error = &wrapped{msg: "webhook: no matching signature", err: ErrInvalidSignature}

	// ErrTimestampTooOld reports an authentic HMAC message whose
	// webhook-timestamp is older than the tolerance: a replay, or a sender
	// whose clock runs behind.
	ErrTimestampTooOld = errors.New("webhook: timestamp too old")

	// ErrTimestampTooNew reports an authentic HMAC message whose
	// webhook-timestamp is further in the future than the tolerance.
	ErrTimestampTooNew = errors.New("webhook: timestamp too new")

	// ErrInvalidKey reports unusable key material: a secret that is not
	// base64 or is empty, an unsupported key type or curve, an RSA key
	// shorter than 2048 bits, or a JWK whose parameters do not form a valid
	// public key.
	ErrInvalidKey = errors.New("webhook: invalid key")

	// ErrUnknownKeyID reports a JWT whose "kid" is absent or not in the
	// JWKS, even after a permitted refresh.
	ErrUnknownKeyID = errors.New("webhook: unknown key id")

	// ErrAlgorithmNotAllowed reports a JWT whose "alg" is not in the
	// verifier's allow-list (for example "none" or "HS256"), or does not fit
	// the key it names (for example "RS256" with an EC key).
	ErrAlgorithmNotAllowed = errors.New("webhook: algorithm not allowed")

	// ErrIssuer reports a JWT whose "iss" differs from the expected issuer.
	ErrIssuer = errors.New("webhook: unexpected issuer")

	// ErrAudience reports a JWT whose "aud" does not contain the expected
	// audience.
	ErrAudience = errors.New("webhook: unexpected audience")

	// ErrProject reports a JWT whose "project" claim differs from the
	// project the verifier is pinned to ([WithProject]), or that has none:
	// a genuine token of another tenant of the same sender.
	ErrProject = errors.New("webhook: unexpected project")

	// ErrTokenExpired reports a JWT whose "exp" has passed (beyond the
	// leeway), or that has no "exp" at all.
	ErrTokenExpired = errors.New("webhook: token expired")

	// ErrTokenNotYetValid reports a JWT whose "iat" or "nbf" lies in the
	// future (beyond the leeway).
	ErrTokenNotYetValid = errors.New("webhook: token not yet valid")

	// ErrBodyHash reports a JWT whose "body_sha256" does not match the raw
	// request body: the token is genuine but the body was altered or
	// belongs to another request.
	ErrBodyHash = errors.New("webhook: body hash mismatch")

	// ErrTokenID reports a JWT whose "jti" differs from the webhook-id
	// header, i.e. a valid token moved onto another message.
	ErrTokenID = errors.New("webhook: token id does not match webhook-id")

	// ErrJWKSFetch reports that the JWKS could not be obtained: the
	// endpoint is unreachable, answered a non-200 status, sent more than
	// the size limit, or sent something that is not a JWKS, and no cached
	// keys are left to fall back on.
	ErrJWKSFetch = errors.New("webhook: fetch jwks")

	// ErrSchemeNotAccepted reports a signature of a kind the [Receiver]
	// has no verifier for (a JWT without a JWKS verifier, or an HMAC
	// signature without secrets).
	ErrSchemeNotAccepted = errors.New("webhook: signature scheme not accepted")
)

// wrapped is a sentinel that wraps another sentinel, so that both match
// with errors.Is. It is comparable and immutable.
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }
