package webhook

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// A Scheme names the signature scheme a message was verified with.
type Scheme string

// Signature schemes.
const (
	// SchemeHMAC is Standard Webhooks v1, HMAC-SHA256 with a shared secret
	// (static webhooks).
	SchemeHMAC Scheme = "hmac-v1"
	// SchemeJWT is a JWT verified with the sender's JWKS (dynamic
	// webhooks).
	SchemeJWT Scheme = "jwt"
)

// A Receiver verifies a webhook signed with either scheme, choosing by the
// shape of the webhook-signature header: "v1,..." entries are HMAC, a
// compact JWS (three base64url parts) is a JWT. Set the verifiers for the
// schemes the endpoint accepts; a message of a scheme whose verifier is nil
// is rejected with [ErrSchemeNotAccepted]. A Receiver is safe for
// concurrent use if its fields are not changed after the first Verify.
//
//	r := &webhook.Receiver{HMAC: hmacVerifier, JWKS: jwksVerifier}
type Receiver struct {
	// HMAC verifies Standard Webhooks v1 signatures. Nil rejects them.
	HMAC *Verifier
	// JWKS verifies JWT signatures. Nil rejects them.
	JWKS *JWKSVerifier

	// MaxBodySize bounds the request body [Receiver.Handler] reads; zero
	// means [DefaultMaxBodySize]. Verify does not use it.
	MaxBodySize int64
	// OnError, if set, is called by [Receiver.Handler] for every request it
	// answers with an error status, with the status and the reason (a
	// verification error, or the error fn returned), for logging and
	// metrics. Verify does not use it.
	OnError func(r *http.Request, status int, err error)
}

// A Result describes a verified message.
type Result struct {
	// Scheme is the signature scheme that verified the message.
	Scheme Scheme
	// ID is the webhook-id header: the idempotency key to deduplicate on.
	ID string
	// Timestamp is the authenticated time of this attempt: the
	// webhook-timestamp for HMAC, the token's "iat" for JWT (zero if the
	// token had none).
	Timestamp time.Time
	// Claims holds the token's claims, for JWT only.
	Claims *Claims
}

// Verify verifies h and body, the raw request body, with the verifier for
// the scheme the webhook-signature header uses. Errors are those of
// [Verifier.Verify] and [JWKSVerifier.Verify], plus [ErrSchemeNotAccepted]
// and [ErrMalformed] for a header of neither shape.
func (r *Receiver) Verify(ctx context.Context, h http.Header, body []byte) (*Result, error) {
	id := header(h, canonID, HeaderID)
	sig := header(h, canonSignature, HeaderSignature)
	if sig == "" {
		return nil, missing(HeaderSignature)
	}
	switch schemeOf(sig) {
	case SchemeHMAC:
		if r.HMAC == nil {
			return nil, fmt.Errorf("%w: HMAC signature, but no secrets configured", ErrSchemeNotAccepted)
		}
		ts, err := r.HMAC.verify(id, header(h, canonTimestamp, HeaderTimestamp), sig, body)
		if err != nil {
			return nil, err
		}
		return &Result{Scheme: SchemeHMAC, ID: id, Timestamp: ts}, nil
	case SchemeJWT:
		if r.JWKS == nil {
			return nil, fmt.Errorf("%w: JWT signature, but no JWKS configured", ErrSchemeNotAccepted)
		}
		c, err := r.JWKS.VerifyRaw(ctx, id, sig, body)
		if err != nil {
			return nil, err
		}
		res := &Result{Scheme: SchemeJWT, ID: id, Claims: c}
		if c.IssuedAt != 0 {
			res.Timestamp = c.IssuedAt.Time()
		}
		return res, nil
	}
	return nil, fmt.Errorf("%w: %s is neither v1 entries nor a compact JWS", ErrMalformed, HeaderSignature)
}

// schemeOf classifies a webhook-signature value by shape alone. A comma
// never occurs in a compact JWS and always in a "v1,<mac>" entry.
func schemeOf(sig string) Scheme {
	if strings.IndexByte(sig, ',') >= 0 {
		return SchemeHMAC
	}
	if strings.Count(sig, ".") != 2 {
		return ""
	}
	for i := 0; i < len(sig); i++ {
		switch c := sig[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return ""
		}
	}
	return SchemeJWT
}
