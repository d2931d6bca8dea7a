package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"

	"github.com/longhook/longhook/internal/gateway/verify"
	"github.com/longhook/longhook/internal/telemetry"
	"github.com/longhook/longhook/webhook"
)

// intake is the request path of one source: body limit → verify → dedupe
// on (source, webhook-id) → durable write → 2xx. Nothing is answered 2xx
// before the transaction holding the event has committed.
func (g *Gateway) intake(src *source) http.Handler {
	name := src.cfg.Name
	sm := g.m.forSource(name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := g.now()
		attrs := make([]slog.Attr, 0, 10)
		attrs = append(attrs, slog.String("source", name))
		var span trace.Span
		if telemetry.Enabled() {
			r, span = startIntakeSpan(r, name)
		}
		status, outcome := g.receive(w, r, src, &attrs)
		if span != nil {
			endIntakeSpan(span, status, outcome)
		}
		g.recent.add(start, name, status, outcome, attrs)
		elapsed := g.now().Sub(start)
		sm.outcomes[outcome].Inc()
		sm.seconds.Observe(elapsed.Seconds())
		attrs = append(attrs, slog.Int("status", status), slog.String("outcome", outcome), slog.Duration("duration", elapsed))
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		} else if status >= 400 {
			level = slog.LevelWarn
		}
		g.log.LogAttrs(r.Context(), level, "gateway.receive", attrs...)
	})
}

// receive handles one request and returns the status sent and the outcome
// label; attrs collects the fields of the request's log line.
func (g *Gateway) receive(w http.ResponseWriter, r *http.Request, src *source, attrs *[]slog.Attr) (int, string) {
	// Each refusal records its reason as the log line's "error", which the
	// console's recent requests show as why (issue 16: "refused and why").
	if r.Method != http.MethodPost {
		*attrs = append(*attrs, slog.String("error", fmt.Sprintf("method %s: a source takes POST", r.Method)))
		return methodNotAllowed(w, r, []string{http.MethodPost}), "invalid"
	}
	body, err := readBody(w, r, g.cfg.MaxBodyBytes)
	if err != nil {
		return g.refuseBody(w, err, attrs)
	}
	id, typ, scheme, challenge, err := src.verify(r, body)
	if id != "" {
		*attrs = append(*attrs, slog.String("webhook_id", truncate(id, 128)))
	}
	if err != nil {
		return refuseUnverified(w, r, src, err, attrs)
	}
	if len(id) > 256 {
		return writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "webhook-id is longer than 256 characters"), "invalid"
	}
	if typ == "" {
		typ = eventType(body)
	}
	now := g.now()
	h := make(http.Header, 6)
	for k, v := range r.Header {
		if keptHeader(k) || (src.preset != nil && src.preset.Keep(k)) {
			h[k] = v
		}
	}
	ctx := r.Context()
	var span trace.Span
	if telemetry.Enabled() {
		ctx, span = startStoreSpan(ctx, id, typ, h)
	}
	ar, err := g.inbox.Accept(ctx, AcceptParams{
		Source: src.cfg.Name, WebhookID: id, Type: typ, Header: h, Body: body,
		ReceivedAt: now, ExpireAt: now.Add(src.cfg.DedupeHorizon),
	})
	if span != nil {
		endStoreSpan(span, ar, err)
	}
	*attrs = append(*attrs, slog.String("scheme", scheme), slog.String("type", truncate(typ, 128)))
	if err != nil {
		*attrs = append(*attrs, slog.Any("error", err))
		return writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "the event could not be stored; retry"), "error"
	}
	*attrs = append(*attrs, slog.Int64("seq", ar.Seq), slog.Bool("duplicate", ar.Duplicate))
	outcome := "accepted"
	if ar.Duplicate {
		outcome = "duplicate"
	}
	if challenge != "" {
		// Slack's URL-verification handshake, stored like any event:
		// Slack takes the Request URL only if the answer echoes it.
		return writeJSON(w, http.StatusOK, challengeBody{Challenge: challenge}), outcome
	}
	return writeAccepted(w, id, ar.Duplicate), outcome
}

// refuseBody answers a request whose body could not be read: too large
// for max_body_bytes, or cut off.
func (g *Gateway) refuseBody(w http.ResponseWriter, err error, attrs *[]slog.Attr) (int, string) {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		msg := fmt.Sprintf("body exceeds the limit of %d bytes", g.cfg.MaxBodyBytes)
		*attrs = append(*attrs, slog.String("error", msg+" (max_body_bytes)"))
		return writeError(w, http.StatusRequestEntityTooLarge, "INVALID_ARGUMENT", msg), "too_large"
	}
	*attrs = append(*attrs, slog.String("error", "could not read the request body: "+err.Error()))
	return writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "could not read the request body"), "invalid"
}

// refuseUnverified answers a request the source's verifier refused. The
// log line gets the whole error; the sender gets what is the sender's.
func refuseUnverified(w http.ResponseWriter, r *http.Request, src *source, err error, attrs *[]slog.Attr) (int, string) {
	status, code, outcome := classify(err, r.Header, src.preset != nil)
	*attrs = append(*attrs, slog.String("error", err.Error()))
	msg := strings.TrimPrefix(err.Error(), "webhook: ")
	switch {
	case status >= 500:
		// The JWKS could not be fetched: its URL and the network
		// error are the operator's (logged above), not the sender's.
		msg = "the signing keys to verify this request could not be fetched; retry later"
	case errors.Is(err, webhook.ErrProject):
		// A validly signed token of another project: the pinned
		// project is the operator's (logged above), and naming it
		// would tell any holder of a token from the same signer
		// (another tenant of a shared server) which tenant this
		// source serves.
		msg = "unexpected project: the token's project claim is not the one this source accepts"
	}
	return writeError(w, status, code, msg), outcome
}

// challengeBody answers Slack's URL-verification handshake.
type challengeBody struct {
	Challenge string `json:"challenge"`
}

// jsonContentType is shared by responses; net/http only reads it.
var jsonContentType = []string{"application/json"}

// writeAccepted writes the 200 answer; it skips encoding/json for the
// common case of an id that needs no escaping (this runs on every event).
func writeAccepted(w http.ResponseWriter, id string, dup bool) int {
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return writeJSON(w, http.StatusOK, acceptBody{WebhookID: id, Duplicate: dup})
		}
	}
	// No Content-Length: net/http computes it for a body this small that
	// is written before the handler returns. Writing the pieces saves the
	// allocations of building the body and the header value.
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"webhook_id":"`)
	_, _ = io.WriteString(w, id)
	if dup {
		_, _ = io.WriteString(w, `","duplicate":true}`+"\n")
	} else {
		_, _ = io.WriteString(w, `","duplicate":false}`+"\n")
	}
	return http.StatusOK
}

// readBody reads the request body, at most limit bytes (a longer one is
// an *http.MaxBytesError). With a Content-Length it reads into one buffer
// of the exact size.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	n := r.ContentLength
	if n > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	if n <= 0 {
		return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	}
	// net/http ends the body after Content-Length bytes.
	body := make([]byte, n)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		return nil, err
	}
	return body, nil
}

type acceptBody struct {
	WebhookID string `json:"webhook_id"`
	Duplicate bool   `json:"duplicate"`
}

// verify authenticates a request with the source's scheme and returns
// its dedupe key, its event type ("" to read it from the body), the name
// of the scheme for the log, the challenge the answer must echo (Slack's
// URL verification, else ""), and the verification error. The key is
// known (for the log) even when verification fails, where the scheme has
// one.
func (src *source) verify(r *http.Request, body []byte) (id, typ, scheme, challenge string, err error) {
	if src.preset != nil {
		res, err := src.preset.Verify(r.Header, body)
		if err != nil {
			return src.preset.HeaderID(r.Header), "", src.preset.Kind(), "", err
		}
		return res.ID, res.Type, src.preset.Kind(), res.Challenge, nil
	}
	id = r.Header.Get(webhook.HeaderID)
	res, err := src.recv.Verify(r.Context(), r.Header, body)
	if err != nil {
		return id, "", "", "", err
	}
	if res.Claims != nil {
		typ = res.Claims.Type
	}
	return id, typ, string(res.Scheme), "", nil
}

// classify maps a verification error to a status, a Google error status
// and a metrics outcome: stale or future timestamps and malformed
// non-signature input are 400, a missing or bad signature is 401, and a
// JWKS that cannot be fetched is 503 (the sender retries). preset says the
// error comes from a provider preset, whose signature header is not
// webhook-signature.
func classify(err error, h http.Header, preset bool) (int, string, string) {
	switch {
	case errors.Is(err, webhook.ErrTimestampTooOld), errors.Is(err, webhook.ErrTimestampTooNew),
		errors.Is(err, webhook.ErrTokenExpired), errors.Is(err, webhook.ErrTokenNotYetValid):
		return http.StatusBadRequest, "INVALID_ARGUMENT", "stale"
	case errors.Is(err, webhook.ErrJWKSFetch):
		return http.StatusServiceUnavailable, "UNAVAILABLE", "error"
	case preset && errors.Is(err, verify.ErrMissingSignature):
		return http.StatusUnauthorized, "UNAUTHENTICATED", "unauthenticated"
	case preset && (errors.Is(err, webhook.ErrMissingHeader) || errors.Is(err, webhook.ErrMalformed)):
		return http.StatusBadRequest, "INVALID_ARGUMENT", "invalid"
	case errors.Is(err, webhook.ErrMissingHeader):
		if h.Get(webhook.HeaderSignature) == "" {
			return http.StatusUnauthorized, "UNAUTHENTICATED", "unauthenticated"
		}
		return http.StatusBadRequest, "INVALID_ARGUMENT", "invalid"
	case errors.Is(err, webhook.ErrMalformed):
		// A timestamp the verifier refused (letters, a sign, leading
		// zeros: not plain decimal Unix seconds) is malformed input
		// whether or not strconv could read it.
		msg := err.Error()
		_, perr := strconv.ParseInt(h.Get(webhook.HeaderTimestamp), 10, 64)
		if (perr != nil || strings.Contains(msg, webhook.HeaderTimestamp)) && !strings.Contains(msg, webhook.HeaderSignature) {
			return http.StatusBadRequest, "INVALID_ARGUMENT", "invalid"
		}
		return http.StatusUnauthorized, "UNAUTHENTICATED", "unauthenticated"
	}
	return http.StatusUnauthorized, "UNAUTHENTICATED", "unauthenticated"
}

// eventType reads the top-level "type" of a JSON event envelope, "" if
// there is none or the body is not a JSON object. It scans without
// decoding and stops at the member, which envelopes put first.
func eventType(body []byte) string {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return ""
	}
	i++
	for {
		i = skipSpace(body, i)
		if i >= len(body) || body[i] != '"' {
			return ""
		}
		keyEnd, ok := skipString(body, i)
		if !ok {
			return ""
		}
		key := body[i+1 : keyEnd-1]
		i = skipSpace(body, keyEnd)
		if i >= len(body) || body[i] != ':' {
			return ""
		}
		i = skipSpace(body, i+1)
		if string(key) == "type" {
			end, ok := skipString(body, i)
			if !ok || i >= len(body) || body[i] != '"' {
				return ""
			}
			if raw := body[i+1 : end-1]; plainJSONString(raw) {
				return string(raw) // what json.Unmarshal returns, without its cost
			}
			var t string
			if json.Unmarshal(body[i:end], &t) != nil {
				return ""
			}
			return t
		}
		if i, ok = skipValue(body, i); !ok {
			return ""
		}
		i = skipSpace(body, i)
		if i >= len(body) || body[i] != ',' {
			return ""
		}
		i++
	}
}

// plainJSONString reports whether raw, the inside of a JSON string, needs
// no decoding: no escapes, no control characters, valid UTF-8.
func plainJSONString(raw []byte) bool {
	for _, c := range raw {
		if c == '\\' || c < 0x20 {
			return false
		}
	}
	return utf8.Valid(raw)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the JSON string starting at b[i].
func skipString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return 0, false
}

// skipValue returns the index after the JSON value starting at b[i],
// checking only enough structure to find its end.
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, ok := skipString(b, i)
				if !ok {
					return 0, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return 0, false
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\n' && b[i] != '\r' && b[i] != '\t' {
		i++
	}
	return i, true
}

// errorBody is the Google error envelope the rest of longhook uses.
type errorBody struct {
	Error errorStatus `json:"error"`
}

type errorStatus struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) int {
	return writeJSON(w, status, errorBody{Error: errorStatus{Code: status, Message: msg, Status: code}})
}

func writeJSON(w http.ResponseWriter, status int, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":500,"message":"encode","status":"INTERNAL"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return status
}
