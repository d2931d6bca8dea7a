// Package check is `longhook check`: a conformance check a user points at
// their own webhook endpoint. It sends signed requests that a correct
// receiver must accept and forgeries and replays it must refuse, and
// reports, per case, the expected and actual answer and the response time.
//
// A correct receiver verifies the signature over the raw body, enforces
// the timestamp tolerance, accepts any matching entry of a multi-signature
// header, and deduplicates on webhook-id before processing the body. The
// last point is observed from outside by redelivering a webhook-id with a
// correctly signed body that cannot be processed (it is not JSON): a
// receiver that deduplicates answers 2xx without looking at it; one that
// processes every delivery fails on it.
package check

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/longhook/longhook/internal/envflag"
	"github.com/longhook/longhook/internal/gateway/verify"
	"github.com/longhook/longhook/webhook"
)

// Result is the outcome of one case.
type Result struct {
	Case     string  `json:"case"`
	Scheme   string  `json:"scheme"` // "hmac", "jwt" or the preset's kind
	About    string  `json:"about"`
	Expected string  `json:"expected"` // "2xx" or "4xx"
	Status   int     `json:"status"`   // 0 if the request failed
	Error    string  `json:"error,omitempty"`
	Millis   float64 `json:"ms"`
	Pass     bool    `json:"pass"`
	// NotRun: the case was not sent, because the receiver could not be
	// reached by an earlier one.
	NotRun bool `json:"not_run,omitempty"`
}

type secretList []string

func (s *secretList) String() string     { return strings.Join(*s, ",") }
func (s *secretList) Set(v string) error { *s = append(*s, v); return nil }

// RunCheck is `longhook check URL [flags]`.
//
// Every flag falls back to its variable (envflag.Name: --secret →
// LONGHOOK_SECRET; LONGHOOK_CHECK_SECRET, the name before the rule, still
// works with a warning on stderr).
//
// Flags: --secret whsec_... (repeatable) runs the
// HMAC cases with the receiver's secret; --jwks-issuer http://127.0.0.1:PORT
// runs the JWT cases: check serves its JWKS at ISSUER/.well-known/jwks.json
// on that loopback address and signs with its own RSA key (--jwt-key FILE
// keeps the key across runs, so a receiver's JWKS cache stays valid);
// --audience (default: URL); --project ID puts that "project" claim in
// every token and adds a case with another project's token, which a
// receiver pinned to ID must refuse; --timeout per request (default 10 s);
// --json. --preset stripe|github|slack|shopify signs the cases the way
// that provider does instead, with --secret being the provider's signing
// secret as written.
// At least one of --secret and --jwks-issuer is required. The returned
// error lists the failed cases, so the command exits non-zero.
func RunCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseCheckArgs(args, getenv, stderr)
	if err != nil {
		return err
	}
	c := &checker{target: o.target, client: &http.Client{Timeout: o.timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
	var results []Result
	if o.preset != "" {
		if results, err = c.presetCases(ctx, o.preset, o.secrets[0]); err != nil {
			return err
		}
	} else if len(o.parsed) > 0 {
		results = append(results, c.hmacCases(ctx, o.parsed)...)
	}
	if o.issuer != "" {
		aud := o.audience
		if aud == "" {
			aud = o.target
		}
		js, err := startJWKS(o.issuer, o.keyFile)
		if err != nil {
			return err
		}
		defer js.close()
		fmt.Fprintf(stderr, "check: serving JWKS at %s (issuer %s)\n", js.jwksURL(), js.issuer)
		results = append(results, c.jwtCases(ctx, js, aud, o.project)...)
	}
	report(stdout, results, c.unreachable, o.asJSON)
	if o.issuer != "" && o.keyFile == "" && refused(results, "jwt-valid") {
		// The likeliest cause on a second run: each run signs with a new key
		// under a new key id, and a receiver that cached the last run's JWKS
		// refetches it at most once per its minimum refresh interval.
		fmt.Fprintln(stderr, "check: hint: jwt-valid was refused; a receiver that cached the JWKS of an earlier check run may not fetch this run's new key yet: give --jwt-key FILE to sign every run with one key")
	}
	if c.unreachable != nil {
		return fmt.Errorf("check: cannot reach the receiver: %w", c.unreachable)
	}
	var failed []string
	for _, r := range results {
		if !r.Pass {
			failed = append(failed, r.Case)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("check: %d of %d cases failed: %s", len(failed), len(results), strings.Join(failed, ", "))
	}
	return nil
}

// refused reports whether the named case was sent and answered 4xx.
func refused(results []Result, name string) bool {
	for _, r := range results {
		if r.Case == name {
			return !r.Pass && r.Status >= 400 && r.Status < 500
		}
	}
	return false
}

// checkOptions are RunCheck's command line, parsed.
type checkOptions struct {
	target                                     string
	secrets                                    secretList
	parsed                                     []webhook.Secret // secrets parsed (none with a preset)
	issuer, audience, project, keyFile, preset string
	timeout                                    time.Duration
	asJSON                                     bool
}

// parseCheckArgs parses RunCheck's command line and checks it: every
// mistake on it is found before a case is sent.
func parseCheckArgs(args []string, getenv func(string) string, stderr io.Writer) (*checkOptions, error) {
	fs := envflag.New("check", getenv, stderr)
	fs.Describe("longhook check URL (--secret whsec_… | --jwks-issuer URL) [flags]", `Tests your webhook receiver at URL from outside: a valid event, a bad signature, stale and
future timestamps, a redelivery of the same webhook-id, a rotation with two signatures and, with
--jwks-issuer, JWT cases; --preset signs as Stripe, GitHub, Slack or Shopify sign. It prints
pass or fail per case and exits 1 when one fails.

Examples:
  longhook check http://localhost:3000/hook --secret whsec_…
  longhook check http://localhost:3000/stripe --preset stripe --secret whsec_…`)
	var secrets secretList
	fs.Var(&secrets, "secret", "receiver's signing secret (whsec_...); repeatable")
	issuer := fs.String("jwks-issuer", "", "run the JWT cases, serving a JWKS at this loopback URL, e.g. http://127.0.0.1:8765")
	audience := fs.String("audience", "", "JWT audience (default: the receiver URL)")
	project := fs.String("project", "", "JWT project claim the receiver is pinned to; adds a case with another project's token")
	keyFile := fs.String("jwt-key", "", "PEM file with the RSA key to sign JWTs (created if missing; default: a new key per run)")
	timeout := fs.Duration("timeout", 10*time.Second, "timeout per request")
	asJSON := fs.Bool("json", false, "print JSON")
	preset := fs.String("preset", "", "sign as a provider does: stripe, github, slack or shopify (--secret is its signing secret); standard-webhooks and gemini name the default cases")
	fs.Alias("secret", "LONGHOOK_CHECK_SECRET")
	target, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	if err := fs.FillFromEnv(); err != nil {
		return nil, err
	}
	for _, d := range fs.Deprecated() {
		fmt.Fprintln(stderr, "check: warning:", d)
	}
	o := &checkOptions{target: target, secrets: secrets, issuer: *issuer, audience: *audience, project: *project,
		keyFile: *keyFile, preset: *preset, timeout: *timeout, asJSON: *asJSON}
	if err := o.check(); err != nil {
		return nil, err
	}
	return o, nil
}

// check refuses a command line that cannot run as asked, and parses the
// secrets.
func (o *checkOptions) check() error {
	var err error
	if u, err := url.Parse(o.target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("check: %w: the receiver URL %q is not an absolute http(s) URL", envflag.ErrUsage, o.target)
	}
	if len(o.secrets) == 0 && o.issuer == "" {
		return fmt.Errorf("check: %w: give --secret (HMAC cases), --jwks-issuer (JWT cases) or both", envflag.ErrUsage)
	}
	if o.timeout <= 0 {
		return fmt.Errorf("check: %w: --timeout %s: want a positive duration", envflag.ErrUsage, o.timeout)
	}
	if o.issuer != "" {
		if _, err := parseIssuer(o.issuer); err != nil {
			return err
		}
	} else {
		// The JWT settings apply only to the JWT cases: given alone they
		// would be ignored, and a check the user asked for silently skipped.
		for _, f := range []struct{ name, v string }{{"--project", o.project}, {"--audience", o.audience}, {"--jwt-key", o.keyFile}} {
			if f.v != "" {
				return fmt.Errorf("check: %w: %s applies to the JWT cases: give --jwks-issuer too", envflag.ErrUsage, f.name)
			}
		}
	}
	if o.preset == "standard-webhooks" || o.preset == "gemini" {
		// The gateway's kind names for check's default cases: Standard
		// Webhooks HMAC with --secret, Gemini's JWTs with --jwks-issuer.
		o.preset = ""
	}
	if o.preset != "" {
		if !slices.Contains(checkPresets, o.preset) {
			return fmt.Errorf("check: %w: --preset %q: unknown kind (one of %s, standard-webhooks, gemini)", envflag.ErrUsage, o.preset, strings.Join(checkPresets, ", "))
		}
		if len(o.secrets) != 1 || o.issuer != "" {
			return fmt.Errorf("check: %w: --preset takes %s, exactly one --secret and no --jwks-issuer", envflag.ErrUsage, strings.Join(checkPresets, ", "))
		}
		if _, err := verify.New(verify.Spec{Kind: o.preset, Secrets: [][]byte{[]byte(o.secrets[0])}}, nil); err != nil {
			return fmt.Errorf("check: %w: --preset %s: %v", envflag.ErrUsage, o.preset, err)
		}
		return nil
	}
	o.parsed = make([]webhook.Secret, len(o.secrets))
	for i, s := range o.secrets {
		if o.parsed[i], err = webhook.ParseSecret(s); err != nil {
			return fmt.Errorf("check: %w: --secret %d: %v", envflag.ErrUsage, i+1, err)
		}
	}
	return nil
}

// parseInterspersed accepts the URL before, between or after the flags.
func parseInterspersed(fs *envflag.FlagSet, args []string) (string, error) {
	var positional []string
	for {
		if err := fs.ParseOnly(args); err != nil {
			return "", err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != 1 {
		return "", fmt.Errorf("check: %w: give exactly one receiver URL (longhook check https://example.com/hook --secret whsec_…)", envflag.ErrUsage)
	}
	return positional[0], nil
}

// report prints results; unreachable, when set, is why the cases marked
// NotRun were not sent (the returned error carries its text).
func report(w io.Writer, results []Result, unreachable error, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		doc := map[string]any{"results": results}
		if unreachable != nil {
			doc["unreachable"] = unreachable.Error()
		}
		_ = enc.Encode(doc)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tCASE\tEXPECTED\tACTUAL\tTIME\tWHAT")
	passed, notRun := 0, 0
	for _, r := range results {
		verdict, actual, took := "FAIL", strconv.Itoa(r.Status), fmt.Sprintf("%.1f ms", r.Millis)
		switch {
		case r.NotRun:
			verdict, actual, took = "not run", "-", "-"
			notRun++
		case r.Pass:
			verdict = "pass"
			passed++
		}
		if r.Status == 0 && !r.NotRun {
			actual = "error: " + r.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", verdict, r.Case, r.Expected, actual, took, r.About)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%d of %d cases passed", passed, len(results))
	if unreachable != nil {
		fmt.Fprintf(w, "; the receiver could not be reached, %d not run", notRun)
	}
	fmt.Fprintln(w)
}

type checker struct {
	target string
	client *http.Client
	// unreachable is the first error that meant no connection could be
	// made; the cases after it are not sent.
	unreachable error
}

type request struct {
	id, sig string
	ts      time.Time
	body    []byte
	omitSig bool
}

// send posts one Standard Webhooks request and judges the status against
// expect ("2xx" or "4xx").
func (c *checker) send(ctx context.Context, name, scheme, about, expect string, r request) Result {
	h := http.Header{}
	h.Set(webhook.HeaderID, r.id)
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(r.ts.Unix(), 10))
	if !r.omitSig {
		h.Set(webhook.HeaderSignature, r.sig)
	}
	return c.sendHeaders(ctx, name, scheme, about, expect, h, r.body)
}

// event returns a ping envelope for the given id.
func event(id string) []byte {
	return fmt.Appendf(nil, `{"type":"webhook.ping","version":"v1","timestamp":%q,"data":{"id":"longhook-check","check_id":%q}}`,
		time.Now().UTC().Format(time.RFC3339), id)
}

// unprocessable is a body no receiver can process: sent, correctly
// signed, with a webhook-id already delivered, it must be acknowledged
// without processing.
var unprocessable = []byte(`longhook-check: redelivery of an already accepted webhook-id; must not be processed`)

func newID(kind string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("msg_check_%s_%x", kind, b)
}

func (c *checker) hmacCases(ctx context.Context, secrets []webhook.Secret) []Result {
	key := secrets[0]
	foreign := newSecret()
	now := time.Now()
	signed := func(id string, ts time.Time, body []byte) request {
		return request{id: id, ts: ts, body: body, sig: webhook.Sign(key, id, ts, body)}
	}
	var out []Result
	validID := newID("valid")
	body := event(validID)
	out = append(out, c.send(ctx, "valid", "hmac", "correctly signed event", "2xx", signed(validID, now, body)))

	id := newID("badsig")
	b := event(id)
	out = append(out, c.send(ctx, "bad-signature", "hmac", "signed with a secret the receiver does not have", "4xx",
		request{id: id, ts: now, body: b, sig: webhook.Sign(foreign, id, now, b)}))
	id = newID("nosig")
	out = append(out, c.send(ctx, "missing-signature", "hmac", "no webhook-signature header", "4xx",
		request{id: id, ts: now, body: event(id), omitSig: true}))
	id = newID("tampered")
	r := signed(id, now, event(id))
	r.body = append(bytes.Clone(r.body[:len(r.body)-1]), []byte(`,"extra":1}`)...)
	out = append(out, c.send(ctx, "tampered-body", "hmac", "body changed after signing", "4xx", r))
	id = newID("stale")
	out = append(out, c.send(ctx, "stale-timestamp", "hmac", "signed 10 minutes ago (tolerance is 5 minutes)", "4xx",
		signed(id, now.Add(-10*time.Minute), event(id))))
	id = newID("future")
	out = append(out, c.send(ctx, "future-timestamp", "hmac", "timestamp 10 minutes ahead", "4xx",
		signed(id, now.Add(10*time.Minute), event(id))))
	out = append(out, c.send(ctx, "redelivery", "hmac", "same webhook-id again, re-signed: acknowledge it", "2xx",
		signed(validID, time.Now(), body)))
	out = append(out, c.send(ctx, "redelivery-not-reprocessed", "hmac",
		"same webhook-id, body that cannot be processed: a deduplicating receiver acknowledges without processing", "2xx",
		signed(validID, time.Now(), unprocessable)))
	id = newID("rotation")
	b = event(id)
	ts := time.Now()
	out = append(out, c.send(ctx, "rotation", "hmac", "two signatures, only the second matches: accept", "2xx",
		request{id: id, ts: ts, body: b, sig: webhook.SignAll([]webhook.Secret{foreign, key}, id, ts, b)}))
	return out
}

// newSecret returns a random secret the receiver cannot know.
func newSecret() webhook.Secret {
	text, err := webhook.NewSecret()
	if err != nil {
		panic(err) // crypto/rand failing is not recoverable
	}
	s, _ := webhook.ParseSecret(text)
	return s
}

func (c *checker) jwtCases(ctx context.Context, js *jwksServer, aud, project string) []Result {
	tokFor := func(signer *webhook.JWTSigner, id string, iat time.Time, aud, project string, body []byte) string {
		var env struct {
			Type, Version, Timestamp string
			Data                     json.RawMessage
		}
		_ = json.Unmarshal(body, &env)
		t, err := signer.Sign(webhook.Claims{
			Issuer: js.issuer, Audience: aud, Subject: "longhook-check", ID: id, BodySHA256: webhook.BodyHash(body), Project: project,
			IssuedAt: webhook.NewNumericDate(iat), ExpiresAt: webhook.NewNumericDate(iat.Add(5 * time.Minute)),
			Type: env.Type, Version: env.Version, Timestamp: env.Timestamp, Data: env.Data,
		})
		if err != nil {
			return "invalid"
		}
		return t
	}
	tok := func(signer *webhook.JWTSigner, id string, iat time.Time, aud string, body []byte) string {
		return tokFor(signer, id, iat, aud, project, body)
	}
	signed := func(id string, iat time.Time, body []byte) request {
		return request{id: id, ts: iat, body: body, sig: tok(js.signer, id, iat, aud, body)}
	}
	now := time.Now()
	var out []Result
	validID := newID("jwt")
	body := event(validID)
	out = append(out, c.send(ctx, "jwt-valid", "jwt", "RS256 JWT from the JWKS at "+js.jwksURL(), "2xx", signed(validID, now, body)))
	id := newID("jwtforged")
	b := event(id)
	out = append(out, c.send(ctx, "jwt-bad-signature", "jwt", "same key id, signed by another key", "4xx",
		request{id: id, ts: now, body: b, sig: tok(js.forger, id, now, aud, b)}))
	id = newID("jwtexpired")
	out = append(out, c.send(ctx, "jwt-expired", "jwt", "token issued an hour ago, expired", "4xx",
		signed(id, now.Add(-time.Hour), event(id))))
	id = newID("jwtaud")
	b = event(id)
	out = append(out, c.send(ctx, "jwt-wrong-audience", "jwt", "token for another audience", "4xx",
		request{id: id, ts: now, body: b, sig: tok(js.signer, id, now, "https://another-receiver.invalid/hook", b)}))
	if project != "" {
		id = newID("jwtproject")
		b = event(id)
		out = append(out, c.send(ctx, "jwt-wrong-project", "jwt", "genuine token of another project of the same sender", "4xx",
			request{id: id, ts: now, body: b, sig: tokFor(js.signer, id, now, aud, "another-project", b)}))
	}
	id = newID("jwtbody")
	r := signed(id, now, event(id))
	r.body = append(bytes.Clone(r.body[:len(r.body)-1]), []byte(`,"extra":1}`)...)
	out = append(out, c.send(ctx, "jwt-body-mismatch", "jwt", "body does not match body_sha256", "4xx", r))
	out = append(out, c.send(ctx, "jwt-redelivery", "jwt", "same webhook-id, new token: acknowledge it", "2xx",
		signed(validID, time.Now(), body)))
	out = append(out, c.send(ctx, "jwt-redelivery-not-reprocessed", "jwt",
		"same webhook-id, body that cannot be processed: acknowledge without processing", "2xx",
		signed(validID, time.Now(), unprocessable)))
	return out
}

// jwksServer publishes check's public key on a loopback port.
type jwksServer struct {
	issuer string
	signer *webhook.JWTSigner
	forger *webhook.JWTSigner // same kid, other key
	srv    *http.Server
}

func (j *jwksServer) jwksURL() string { return j.issuer + "/.well-known/jwks.json" }

// checkPresets are the --preset values: the provider presets (the
// generic hmac kind has no fixed scheme to sign with).
var checkPresets = []string{verify.KindStripe, verify.KindGitHub, verify.KindSlack, verify.KindShopify}

// parseIssuer reads --jwks-issuer: http://HOST:PORT on a loopback address
// (check serves its JWKS there); anything else is a usage mistake.
func parseIssuer(issuer string) (*url.URL, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("check: %w: --jwks-issuer %q must be http://HOST:PORT on a loopback address", envflag.ErrUsage, issuer)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); (ip == nil && host != "localhost") || (ip != nil && !ip.IsLoopback()) {
		return nil, fmt.Errorf("check: %w: --jwks-issuer %q must be on a loopback address", envflag.ErrUsage, issuer)
	}
	return u, nil
}

func startJWKS(issuer, keyFile string) (*jwksServer, error) {
	u, err := parseIssuer(issuer)
	if err != nil {
		return nil, err
	}
	key, err := loadKey(keyFile)
	if err != nil {
		return nil, err
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	pub, _ := webhook.NewJWK("", &key.PublicKey)
	sum := sha256.Sum256([]byte(pub.N))
	kid := "check-" + hex.EncodeToString(sum[:8])
	signer, err := webhook.NewJWTSigner(kid, key)
	if err != nil {
		return nil, err
	}
	forger, err := webhook.NewJWTSigner(kid, other)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("check: jwks: %w", err)
	}
	js := &jwksServer{issuer: "http://" + ln.Addr().String(), signer: signer, forger: forger}
	if u.Port() != "0" && u.Port() != "" {
		js.issuer = strings.TrimSuffix(issuer, "/") // keep the spelling the receiver was configured with
	}
	doc, _ := json.Marshal(webhook.JWKS{Keys: []webhook.JWK{signer.PublicJWK()}})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(doc)
	})
	js.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = js.srv.Serve(ln) }()
	return js, nil
}

func (j *jwksServer) close() { _ = j.srv.Close() }

// loadKey reads an RSA key in PKCS#8 PEM, creating the file with a new
// key if it does not exist; without a file it returns a fresh key.
func loadKey(path string) (*rsa.PrivateKey, error) {
	if path != "" {
		if b, err := os.ReadFile(path); err == nil {
			blk, _ := pem.Decode(b)
			if blk == nil {
				return nil, fmt.Errorf("check: --jwt-key %s: not PEM", path)
			}
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("check: --jwt-key %s: %w", path, err)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("check: --jwt-key %s: not an RSA key", path)
			}
			return rk, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("check: --jwt-key: %w", err)
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	if path != "" {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, fmt.Errorf("check: --jwt-key: %w", err)
		}
	}
	return key, nil
}
