package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of the Standard Webhooks specification, used by both
// signature schemes.
const (
	// HeaderID carries the message id, identical on every retry of a
	// delivery: receivers deduplicate on it.
	HeaderID = "webhook-id"
	// HeaderTimestamp carries the Unix time in seconds of this attempt.
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature carries "v1,<base64>" HMAC entries or a compact JWS.
	HeaderSignature = "webhook-signature"
)

// Canonical (net/textproto) spellings, so lookups need no allocation.
const (
	canonID        = "Webhook-Id"
	canonTimestamp = "Webhook-Timestamp"
	canonSignature = "Webhook-Signature"
)

const (
	// signatureLen is len("v1," + base64(HMAC-SHA256)).
	signatureLen = 3 + 44
	// stackSecrets is how many secrets are verified without a heap
	// allocation.
	stackSecrets = 4
)

// Sign returns the Standard Webhooks v1 signature of a message:
// "v1," followed by standard base64 of HMAC-SHA256(key,
// "{id}.{unix seconds of ts}.{body}"). It is the value of the
// webhook-signature header for a single secret. Sign makes one allocation
// (the returned string) and panics if secret is the zero Secret.
func Sign(secret Secret, id string, ts time.Time, body []byte) string {
	var buf [signatureLen]byte
	return string(AppendSignature(buf[:0], secret, id, ts, body))
}

// SignAll returns the webhook-signature header value for a rotation overlap:
// one "v1,<base64>" entry per secret, separated by single spaces, in the
// order given. It returns "" for no secrets and allocates only the
// returned string.
func SignAll(secrets []Secret, id string, ts time.Time, body []byte) string {
	if len(secrets) == 0 {
		return ""
	}
	var b strings.Builder
	b.Grow(len(secrets)*(signatureLen+1) - 1)
	for i, s := range secrets {
		if i > 0 {
			b.WriteByte(' ')
		}
		var buf [signatureLen]byte
		b.Write(AppendSignature(buf[:0], s, id, ts, body))
	}
	return b.String()
}

// AppendSignature appends the "v1,<base64>" signature of a message to dst
// and returns the extended slice, like [Sign] but without allocating when
// dst has room for 47 more bytes. Callers that build the header for several
// secrets separate the entries with a space.
func AppendSignature(dst []byte, secret Secret, id string, ts time.Time, body []byte) []byte {
	var sum [sha256.Size]byte
	secret.mac(&sum, id, ts.Unix(), body)
	dst = append(dst, "v1,"...)
	return base64.StdEncoding.AppendEncode(dst, sum[:])
}

// appendSignedPrefix appends "{id}.{unix}." — the part of the signed content
// before the body.
func appendSignedPrefix(dst []byte, id string, unix int64) []byte {
	dst = append(dst, id...)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, unix, 10)
	return append(dst, '.')
}

// A Verifier checks Standard Webhooks v1 (HMAC-SHA256) signatures against
// one or more secrets. Several secrets let a receiver accept both sides of
// a secret rotation. A Verifier is immutable and safe for concurrent use.
type Verifier struct {
	secrets   []Secret
	tolerance time.Duration
	now       func() time.Time
}

// NewVerifier returns a Verifier that accepts a message signed with any of
// secrets (each in "whsec_..." form, see [ParseSecret]). Options:
// [WithTolerance] (default [DefaultTolerance], at least one second: the
// timestamp check cannot be turned off) and [WithClock]; others are
// ignored.
func NewVerifier(secrets []string, opts ...Option) (*Verifier, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%w: no secrets given", ErrInvalidKey)
	}
	cfg, err := newConfig(DefaultTolerance, opts)
	if err != nil {
		return nil, fmt.Errorf("webhook: new verifier: %w", err)
	}
	if cfg.tolerance < time.Second {
		// Zero does not turn the check off: it refuses almost every
		// message, whose timestamp has whole seconds.
		return nil, fmt.Errorf("webhook: new verifier: tolerance %v is below one second, the resolution of %s; the timestamp check cannot be turned off", cfg.tolerance, HeaderTimestamp)
	}
	v := &Verifier{tolerance: cfg.tolerance, now: cfg.now}
	for i, s := range secrets {
		sec, err := ParseSecret(s)
		if err != nil {
			return nil, fmt.Errorf("webhook: new verifier: secret %d: %w", i, err)
		}
		v.secrets = append(v.secrets, sec)
	}
	return v, nil
}

// Verify checks the webhook-id, webhook-timestamp and webhook-signature
// headers of h against body, which must be the raw request body exactly as
// received (verify before decoding JSON). It returns nil if at least one v1
// entry of the signature header matches at least one secret and the
// timestamp is within the tolerance. Entries of other versions (such as
// "v1a") are skipped.
//
// The signature is checked before the timestamp, so [ErrTimestampTooOld]
// and [ErrTimestampTooNew] describe authentic messages (replays or clock
// skew), never forgeries. Errors wrap [ErrMissingHeader], [ErrMalformed],
// [ErrNoMatchingSignature], [ErrTimestampTooOld] or [ErrTimestampTooNew].
func (v *Verifier) Verify(h http.Header, body []byte) error {
	_, err := v.verify(
		header(h, canonID, HeaderID),
		header(h, canonTimestamp, HeaderTimestamp),
		header(h, canonSignature, HeaderSignature),
		body)
	return err
}

// VerifyRaw is [Verifier.Verify] for callers that hold the three header
// values rather than an [http.Header] (queues, serverless events, tests).
func (v *Verifier) VerifyRaw(id, timestamp, signature string, body []byte) error {
	_, err := v.verify(id, timestamp, signature, body)
	return err
}

// verify implements Verify and returns the parsed timestamp.
func (v *Verifier) verify(id, timestamp, signature string, body []byte) (time.Time, error) {
	switch {
	case id == "":
		return time.Time{}, missing(HeaderID)
	case timestamp == "":
		return time.Time{}, missing(HeaderTimestamp)
	case signature == "":
		return time.Time{}, missing(HeaderSignature)
	}
	unix, err := parseUnix(timestamp)
	if err != nil {
		return time.Time{}, err
	}

	var stack [stackSecrets][sha256.Size]byte
	var macs [][sha256.Size]byte // computed on the first v1 entry
	entries, checked, matched := 0, 0, false
	for rest := signature; rest != "" && !matched; {
		var entry string
		entry, rest = cutEntry(rest)
		version, value, ok := strings.Cut(entry, ",")
		if !ok || version == "" {
			continue
		}
		entries++
		var got [sha256.Size]byte
		if version != "v1" || !decodeMAC(&got, value) {
			continue
		}
		checked++
		if macs == nil {
			macs = stack[:0]
			if len(v.secrets) > stackSecrets {
				macs = make([][sha256.Size]byte, 0, len(v.secrets))
			}
			for _, s := range v.secrets {
				macs = append(macs, [sha256.Size]byte{})
				s.mac(&macs[len(macs)-1], id, unix, body)
			}
		}
		for i := range macs {
			if hmac.Equal(macs[i][:], got[:]) {
				matched = true
				break
			}
		}
	}
	if entries == 0 {
		return time.Time{}, fmt.Errorf("%w: %s has no \"version,signature\" entry", ErrMalformed, HeaderSignature)
	}
	if !matched {
		return time.Time{}, noMatch(checked, len(v.secrets))
	}
	ts := time.Unix(unix, 0)
	if err := checkSkew(v.now(), ts, v.tolerance); err != nil {
		return time.Time{}, err
	}
	return ts, nil
}

// noMatch says why no signature matched: there was no v1 entry to check
// (only other versions, or values that are not a base64 HMAC-SHA256), or
// none of those checked was made with a configured secret over these bytes.
func noMatch(checked, secrets int) error {
	if checked == 0 {
		return fmt.Errorf("%w: %s has no v1 entry with a base64 HMAC-SHA256", ErrNoMatchingSignature, HeaderSignature)
	}
	return fmt.Errorf("%w: %d v1 signature(s) checked against %d secret(s): another secret, or the id, timestamp or body differ from what was signed (verify the raw body as received)",
		ErrNoMatchingSignature, checked, secrets)
}

// checkSkew reports whether ts lies within tol of now.
func checkSkew(now, ts time.Time, tol time.Duration) error {
	switch d := now.Sub(ts); {
	case d > tol:
		return fmt.Errorf("%w: %v behind the receiver's clock, tolerance %v", ErrTimestampTooOld, d.Truncate(time.Second), tol)
	case d < -tol:
		return fmt.Errorf("%w: %v ahead of the receiver's clock, tolerance %v", ErrTimestampTooNew, (-d).Truncate(time.Second), tol)
	}
	return nil
}

// cutEntry returns the first space-separated entry of s and what follows it.
func cutEntry(s string) (entry, rest string) {
	s = strings.TrimLeft(s, " ")
	entry, rest, _ = strings.Cut(s, " ")
	return entry, rest
}

// decodeMAC decodes a padded standard base64 HMAC-SHA256 value into out,
// without allocating. It reports false for anything else. The decoding is
// strict: the two unused bits before the "=" must be zero, so each MAC has
// exactly one accepted spelling (a lenient decoder accepts four, which
// makes signatures malleable and defeats signature-based deduplication).
func decodeMAC(out *[sha256.Size]byte, value string) bool {
	const encLen = 44 // base64.StdEncoding.EncodedLen(sha256.Size)
	if len(value) != encLen {
		return false
	}
	var src [encLen]byte
	var dst [encLen / 4 * 3]byte
	copy(src[:], value)
	n, err := strictBase64.Decode(dst[:], src[:])
	if err != nil || n != sha256.Size {
		return false
	}
	copy(out[:], dst[:n])
	return true
}

// strictBase64 is standard padded base64 that refuses non-zero padding
// bits.
var strictBase64 = base64.StdEncoding.Strict()

// parseUnix parses a webhook-timestamp: non-negative decimal Unix seconds,
// no sign, no fraction, no leading zero (one instant has one spelling).
func parseUnix(s string) (int64, error) {
	if len(s) == 0 || len(s) > 18 || (len(s) > 1 && s[0] == '0') {
		return 0, errMalformedTimestamp
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errMalformedTimestamp
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errMalformedTimestamp
	}
	return n, nil
}

var errMalformedTimestamp = fmt.Errorf("%w: %s is not decimal Unix seconds", ErrMalformed, HeaderTimestamp)

// missing returns ErrMissingHeader naming the header.
func missing(name string) error {
	return fmt.Errorf("%w %q", ErrMissingHeader, name)
}

// header returns the first value of a header, looked up by its canonical
// key and, for maps built by hand, by its lowercase name.
func header(h http.Header, canon, lower string) string {
	if v := h[canon]; len(v) > 0 {
		return v[0]
	}
	if v := h[lower]; len(v) > 0 {
		return v[0]
	}
	return ""
}
