// Package verify holds the gateway's provider verification presets: how
// Stripe, GitHub, Slack and Shopify sign their webhooks, and a generic HMAC
// scheme (header, algorithm, encoding, signed content) for the rest. Each
// preset verifies a request, names its dedupe key (the provider's delivery
// id, or a hash of the body where the provider sends none) and its event
// type, and can sign a request the way the provider does, which `longhook
// check` uses to test a team's own receivers.
//
// Standard Webhooks (used by OpenAI, Replicate and every Svix-powered
// sender with webhook-* headers) and Gemini's JWTs stay in the public
// webhook package; the gateway selects between both and these presets.
//
// Errors wrap the webhook package's sentinels (ErrMissingHeader,
// ErrMalformed, ErrNoMatchingSignature, ErrTimestampTooOld/TooNew), and a
// missing signature header also wraps ErrMissingSignature, so callers map
// them to 401 and 400 the same way for every scheme. Messages never hold
// secrets or signatures.
package verify

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // some providers still sign with HMAC-SHA1; HMAC-SHA1 is not broken
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/longhook/longhook/webhook"
)

// Kinds of preset, as written in the gateway config's verify.kind.
const (
	KindStripe  = "stripe"
	KindGitHub  = "github"
	KindSlack   = "slack"
	KindShopify = "shopify"
	KindHMAC    = "hmac" // generic
)

// Kinds lists the presets of this package, for messages.
var Kinds = []string{KindStripe, KindGitHub, KindSlack, KindShopify, KindHMAC}

// ErrMissingSignature reports a request without the signature header: an
// unauthenticated request (401), where another missing header is a
// malformed one (400). It wraps webhook.ErrMissingHeader.
var ErrMissingSignature = fmt.Errorf("%w: signature", webhook.ErrMissingHeader)

// Spec describes a preset. Kind and Secrets are required; the generic
// fields apply to KindHMAC only (the provider presets fix them).
type Spec struct {
	Kind string
	// Secrets are the keys, as bytes; several allow a rotation overlap.
	Secrets [][]byte
	// Tolerance is the timestamp window for schemes that sign one
	// (default 5 m, what Stripe and Slack document).
	Tolerance time.Duration

	// Header carries the signature (KindHMAC, required).
	Header string
	// Algorithm is sha1, sha256 (default) or sha512.
	Algorithm string
	// Encoding of the MAC in Header: hex (default) or base64.
	Encoding string
	// Prefix is stripped from the header value, e.g. "sha256=".
	Prefix string
	// Signed is what the MAC covers, a template of {body}, {timestamp}
	// and {id} (default "{body}").
	Signed string
	// TimestampHeader carries the Unix-seconds timestamp that {timestamp}
	// stands for; required when Signed uses it.
	TimestampHeader string
	// IDHeader carries the delivery id, the dedupe key (default: a hash
	// of the body).
	IDHeader string
	// TypeHeader carries the event type (default: the body's "type").
	TypeHeader string
}

// Result describes a verified request.
type Result struct {
	// ID is the dedupe key: the provider's delivery id, or
	// "sha256:<base64url of the body's SHA-256>" where there is none.
	ID string
	// Type is the event type, "" when the preset has no place for it (the
	// gateway then reads the body's top-level "type").
	Type string
	// Timestamp is the signed timestamp, zero for schemes without one.
	Timestamp time.Time
	// Challenge is set for Slack's URL-verification handshake (a body of
	// type "url_verification"): Slack accepts the Request URL only when the
	// answer echoes this value, as {"challenge": ...}.
	Challenge string
}

// A Verifier checks requests of one preset. It is safe for concurrent use.
type Verifier struct {
	kind      string
	secrets   [][]byte
	tolerance time.Duration
	now       func() time.Time

	header, prefix, signed        string
	tsHeader, idHeader, typHeader string
	// preferredIDHeader, when set, carries the dedupe key in preference
	// to idHeader, which is the fallback (Shopify: X-Shopify-Event-Id,
	// then X-Shopify-Webhook-Id).
	preferredIDHeader        string
	newHash                  func() hash.Hash
	b64                      bool
	keep                     map[string]bool // canonical header names kept with the event
	keepPrefix               string          // and every header with this prefix
	idFromBody, typeFromBody func([]byte) string
}

// New returns the verifier for s; now is the clock (nil: time.Now).
func New(s Spec, now func() time.Time) (*Verifier, error) {
	if now == nil {
		now = time.Now
	}
	if len(s.Secrets) == 0 {
		return nil, errors.New("at least one secret is required")
	}
	for i, k := range s.Secrets {
		if len(k) == 0 {
			return nil, fmt.Errorf("secret %d is empty", i+1)
		}
	}
	v := &Verifier{kind: s.Kind, secrets: s.Secrets, tolerance: s.Tolerance, now: now, newHash: sha256.New}
	if v.tolerance <= 0 {
		v.tolerance = 5 * time.Minute
	}
	switch s.Kind {
	case KindStripe:
		// Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]; the MAC covers
		// "<t>.<body>"; the secret (whsec_...) is used as it is written.
		v.header, v.signed = "Stripe-Signature", "{timestamp}.{body}"
		v.idFromBody, v.typeFromBody = jsonField("id"), jsonField("type")
	case KindGitHub:
		v.header, v.prefix, v.signed = "X-Hub-Signature-256", "sha256=", "{body}"
		v.idHeader, v.typHeader = "X-Github-Delivery", "X-Github-Event"
		v.keepPrefix = "X-Github-"
	case KindSlack:
		v.header, v.prefix, v.signed = "X-Slack-Signature", "v0=", "v0:{timestamp}:{body}"
		v.tsHeader = "X-Slack-Request-Timestamp"
		v.keepPrefix = "X-Slack-"
		v.idFromBody, v.typeFromBody = jsonField("event_id"), slackType
	case KindShopify:
		v.header, v.signed, v.b64 = "X-Shopify-Hmac-Sha256", "{body}", true
		// Shopify's duplicate-detection guide names X-Shopify-Event-Id:
		// the same value on two webhooks is the same event, whichever
		// subscription or retry sent it. X-Shopify-Webhook-Id stays the
		// fallback for a sender that omits the event id.
		v.preferredIDHeader = "X-Shopify-Event-Id"
		v.idHeader, v.typHeader = "X-Shopify-Webhook-Id", "X-Shopify-Topic"
		v.keepPrefix = "X-Shopify-"
	case KindHMAC:
		if err := v.generic(s); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown kind %q (one of %s)", s.Kind, strings.Join(Kinds, ", "))
	}
	// A tolerance bounds the age of a signed timestamp; a scheme that
	// signs none (github, shopify, an hmac block without {timestamp})
	// would accept it and ignore it, as if it protected from replays.
	if s.Tolerance != 0 && !strings.Contains(v.signed, "{timestamp}") {
		return nil, fmt.Errorf("tolerance: kind %s signs no timestamp, so there is no age to bound (remove verify.tolerance; duplicates are caught by the inbox's dedupe)", describeKind(s))
	}
	v.keep = map[string]bool{}
	for _, h := range []string{v.header, v.tsHeader, v.preferredIDHeader, v.idHeader, v.typHeader} {
		if h != "" {
			v.keep[http.CanonicalHeaderKey(h)] = true
		}
	}
	return v, nil
}

// describeKind names s's scheme for a message.
func describeKind(s Spec) string {
	if s.Kind == KindHMAC {
		return "hmac with hmac.signed " + strconv.Quote(cmp.Or(s.Signed, "{body}"))
	}
	return s.Kind
}

// generic sets up KindHMAC from s, validating it.
func (v *Verifier) generic(s Spec) error {
	if s.Header == "" {
		return errors.New("hmac.header is required")
	}
	v.header, v.prefix = http.CanonicalHeaderKey(s.Header), s.Prefix
	switch strings.ToLower(s.Algorithm) {
	case "", "sha256":
	case "sha1":
		v.newHash = sha1.New
	case "sha512":
		v.newHash = sha512.New
	default:
		return fmt.Errorf("hmac.algorithm %q: use sha1, sha256 or sha512", s.Algorithm)
	}
	switch strings.ToLower(s.Encoding) {
	case "", "hex":
	case "base64":
		v.b64 = true
	default:
		return fmt.Errorf("hmac.encoding %q: use hex or base64", s.Encoding)
	}
	v.signed = s.Signed
	if v.signed == "" {
		v.signed = "{body}"
	}
	if !strings.Contains(v.signed, "{body}") {
		return fmt.Errorf("hmac.signed %q must contain {body}", v.signed)
	}
	rest := strings.NewReplacer("{body}", "", "{timestamp}", "", "{id}", "").Replace(v.signed)
	if strings.ContainsAny(rest, "{}") {
		return fmt.Errorf("hmac.signed %q: only {body}, {timestamp} and {id} may appear in braces", v.signed)
	}
	v.tsHeader, v.idHeader, v.typHeader = s.TimestampHeader, s.IDHeader, s.TypeHeader
	if strings.Contains(v.signed, "{timestamp}") && v.tsHeader == "" {
		return errors.New("hmac.timestamp_header is required when hmac.signed uses {timestamp}")
	}
	if strings.Contains(v.signed, "{id}") && v.idHeader == "" {
		return errors.New("hmac.id_header is required when hmac.signed uses {id}")
	}
	for _, p := range []*string{&v.tsHeader, &v.idHeader, &v.typHeader} {
		if *p != "" {
			*p = http.CanonicalHeaderKey(*p)
		}
	}
	return nil
}

// Kind returns the preset's kind.
func (v *Verifier) Kind() string { return v.kind }

// Keep reports whether a received header (canonical name) belongs to the
// scheme and is stored and forwarded with the event, so a destination can
// verify the signature itself.
func (v *Verifier) Keep(canonical string) bool {
	return v.keep[canonical] || (v.keepPrefix != "" && strings.HasPrefix(canonical, v.keepPrefix))
}

// Verify checks h and body, the raw request body.
func (v *Verifier) Verify(h http.Header, body []byte) (Result, error) {
	raw := h.Get(v.header)
	if raw == "" {
		return Result{}, fmt.Errorf("%w: %s", ErrMissingSignature, v.header)
	}
	var (
		res  Result
		macs [][]byte
		err  error
	)
	if v.kind == KindStripe {
		res.Timestamp, macs, err = parseStripe(raw)
		if err != nil {
			return Result{}, err
		}
	} else {
		mac, ok := v.decode(raw)
		if !ok {
			return Result{}, fmt.Errorf("%w: %s is not a %s", webhook.ErrMalformed, v.header, v.describe())
		}
		macs = [][]byte{mac}
		if v.tsHeader != "" {
			ts := h.Get(v.tsHeader)
			if ts == "" {
				return Result{}, fmt.Errorf("%w: %s", webhook.ErrMissingHeader, v.tsHeader)
			}
			if res.Timestamp, err = parseUnix(ts); err != nil {
				return Result{}, fmt.Errorf("%w: %s is not Unix seconds", webhook.ErrMalformed, v.tsHeader)
			}
		}
	}
	id := v.HeaderID(h)
	if strings.Contains(v.signed, "{id}") && id == "" {
		return Result{}, fmt.Errorf("%w: %s", webhook.ErrMissingHeader, v.idHeader)
	}
	if !v.match(macs, res.Timestamp, id, body) {
		return Result{}, fmt.Errorf("%w: %s", webhook.ErrNoMatchingSignature, v.header)
	}
	// Authentic: only now judge its age, so a stale forgery reads as a
	// forgery.
	if strings.Contains(v.signed, "{timestamp}") {
		switch d := v.now().Sub(res.Timestamp); {
		case d > v.tolerance:
			return Result{}, fmt.Errorf("%w: signed %s ago, tolerance %s", webhook.ErrTimestampTooOld, d.Truncate(time.Second), v.tolerance)
		case -d > v.tolerance:
			return Result{}, fmt.Errorf("%w: signed %s ahead, tolerance %s", webhook.ErrTimestampTooNew, (-d).Truncate(time.Second), v.tolerance)
		}
	}
	res.ID = id
	if res.ID == "" && v.idFromBody != nil {
		res.ID = v.idFromBody(body)
	}
	if res.ID == "" {
		res.ID = BodyID(body)
	}
	if v.typHeader != "" {
		res.Type = h.Get(v.typHeader)
	} else if v.typeFromBody != nil {
		res.Type = v.typeFromBody(body)
	}
	if v.kind == KindSlack && res.Type == slackURLVerification {
		res.Challenge = jsonField("challenge")(body)
	}
	return res, nil
}

// slackURLVerification is the type of the request Slack sends when an
// Events API Request URL is set: it is signed like every event, and the
// answer must echo its challenge.
const slackURLVerification = "url_verification"

// slackSlashCommand is the event type of a Slack slash command.
const slackSlashCommand = "slash_command"

// match reports whether one of macs is the MAC of the signed content
// under one of the secrets, comparing in constant time.
func (v *Verifier) match(macs [][]byte, ts time.Time, id string, body []byte) bool {
	ok := false
	for _, k := range v.secrets {
		want := v.mac(k, ts, id, body)
		for _, m := range macs {
			if hmac.Equal(want, m) {
				ok = true
			}
		}
	}
	return ok
}

// mac computes the MAC of the signed content under key.
func (v *Verifier) mac(key []byte, ts time.Time, id string, body []byte) []byte {
	m := hmac.New(v.newHash, key)
	tmpl := v.signed
	for tmpl != "" {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			m.Write([]byte(tmpl))
			break
		}
		m.Write([]byte(tmpl[:i]))
		j := strings.IndexByte(tmpl[i:], '}') + i
		switch tmpl[i : j+1] {
		case "{body}":
			m.Write(body)
		case "{timestamp}":
			m.Write(strconv.AppendInt(nil, ts.Unix(), 10))
		case "{id}":
			m.Write([]byte(id))
		}
		tmpl = tmpl[j+1:]
	}
	return m.Sum(nil)
}

// decode strips the prefix and decodes one MAC.
func (v *Verifier) decode(raw string) ([]byte, bool) {
	s, ok := strings.CutPrefix(strings.TrimSpace(raw), v.prefix)
	if !ok {
		return nil, false
	}
	var (
		b   []byte
		err error
	)
	if v.b64 {
		b, err = base64.StdEncoding.DecodeString(s)
	} else {
		b, err = hex.DecodeString(strings.ToLower(s))
	}
	return b, err == nil && len(b) == v.newHash().Size()
}

func (v *Verifier) describe() string {
	enc := "hex"
	if v.b64 {
		enc = "base64"
	}
	if v.prefix != "" {
		return fmt.Sprintf("%q followed by a %s MAC", v.prefix, enc)
	}
	return enc + " MAC"
}

// parseStripe reads "t=<unix>,v1=<hex>,..." (other schemes, such as the
// test-mode v0, are ignored, as Stripe's libraries do).
func parseStripe(raw string) (time.Time, [][]byte, error) {
	var (
		ts    time.Time
		seenT bool
		macs  [][]byte
	)
	for item := range strings.SplitSeq(raw, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(item), "=")
		switch k {
		case "t":
			t, err := parseUnix(val)
			if err != nil {
				return time.Time{}, nil, fmt.Errorf("%w: Stripe-Signature t= is not Unix seconds", webhook.ErrMalformed)
			}
			ts, seenT = t, true
		case "v1":
			if b, err := hex.DecodeString(val); err == nil && len(b) == sha256.Size {
				macs = append(macs, b)
			}
		}
	}
	if !seenT || len(macs) == 0 {
		return time.Time{}, nil, fmt.Errorf("%w: Stripe-Signature needs t= and at least one v1= entry", webhook.ErrMalformed)
	}
	return ts, macs, nil
}

func parseUnix(s string) (time.Time, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 || n > 1<<40 {
		return time.Time{}, errors.New("not Unix seconds")
	}
	return time.Unix(n, 0), nil
}

// BodyID is the dedupe key of a delivery without an id: a hash of its body.
func BodyID(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// jsonField returns a reader of a top-level string member of a JSON body.
func jsonField(name string) func([]byte) string {
	return func(body []byte) string {
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) != nil {
			return ""
		}
		var s string
		if json.Unmarshal(m[name], &s) != nil {
			return ""
		}
		return s
	}
}

// slackType is the inner event's type for Events API callbacks
// ("event_callback" says nothing), else the top-level type
// ("url_verification", ...). Slack's form-encoded requests carry no
// type field of their own: an interactivity request (a form field
// payload holding JSON) has its payload's type ("block_actions",
// "view_submission", "shortcut", ...), and a slash command (a form field
// command) is "slash_command", so sinks and filters can tell them apart.
func slackType(body []byte) string {
	if len(body) > 0 && body[0] != '{' {
		form, err := url.ParseQuery(string(body))
		switch {
		case err != nil:
			return ""
		case form.Get("payload") != "":
			return jsonField("type")([]byte(form.Get("payload")))
		case form.Get("command") != "":
			return slackSlashCommand
		}
		return ""
	}
	var m struct {
		Type  string `json:"type"`
		Event struct {
			Type string `json:"type"`
		} `json:"event"`
	}
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	if m.Event.Type != "" {
		return m.Event.Type
	}
	return m.Type
}

// Sign returns the headers the provider would send with body, signed with
// secret at ts: the signature header, and the timestamp, delivery-id and
// event-type headers where the scheme has them (id and typ may be "").
// `longhook check` and the tests use it.
func (v *Verifier) Sign(secret []byte, id string, ts time.Time, typ string, body []byte) http.Header {
	h := http.Header{}
	mac := v.mac(secret, ts, id, body)
	switch {
	case v.kind == KindStripe:
		h.Set(v.header, fmt.Sprintf("t=%d,v1=%x", ts.Unix(), mac))
	case v.b64:
		h.Set(v.header, v.prefix+base64.StdEncoding.EncodeToString(mac))
	default:
		h.Set(v.header, v.prefix+hex.EncodeToString(mac))
	}
	if v.tsHeader != "" {
		h.Set(v.tsHeader, strconv.FormatInt(ts.Unix(), 10))
	}
	if id != "" {
		for _, name := range []string{v.preferredIDHeader, v.idHeader} {
			if name != "" {
				h.Set(name, id)
			}
		}
	}
	if v.typHeader != "" && typ != "" {
		h.Set(v.typHeader, typ)
	}
	return h
}

// Header returns the name of the signature header.
func (v *Verifier) Header() string { return v.header }

// Timestamped reports whether the scheme signs a timestamp, and so has a
// replay window; without one, only deduplication stops a replay.
func (v *Verifier) Timestamped() bool { return strings.Contains(v.signed, "{timestamp}") }

// IDHeader returns the header carrying the delivery id (the preferred one
// where the preset reads two), "" when the dedupe key comes from the body.
func (v *Verifier) IDHeader() string {
	if v.preferredIDHeader != "" {
		return v.preferredIDHeader
	}
	return v.idHeader
}

// HeaderID returns the delivery id h carries: the preferred id header's
// value when present, else the id header's; "" when there is neither.
func (v *Verifier) HeaderID(h http.Header) string {
	if v.preferredIDHeader != "" {
		if id := h.Get(v.preferredIDHeader); id != "" {
			return id
		}
	}
	if v.idHeader != "" {
		return h.Get(v.idHeader)
	}
	return ""
}
