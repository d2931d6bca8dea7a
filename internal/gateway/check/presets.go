package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/gateway/verify"
)

// presetCases test a receiver of a provider's webhooks (--preset stripe,
// github, slack or shopify): check signs its deliveries exactly the way
// the provider does, with the receiver's signing secret.
func (c *checker) presetCases(ctx context.Context, kind, secret string) ([]Result, error) {
	v, err := verify.New(verify.Spec{Kind: kind, Secrets: [][]byte{[]byte(secret)}}, nil)
	if err != nil {
		return nil, fmt.Errorf("check: --preset %s: %w", kind, err)
	}
	key, foreign := []byte(secret), []byte("longhook-check-foreign-"+newID("key"))
	send := func(name, about, expect string, h http.Header, body []byte) Result {
		return c.sendHeaders(ctx, name, kind, about, expect, h, body)
	}
	now := time.Now()
	var out []Result
	validID := newID(kind)
	body := providerEvent(validID)
	out = append(out, send("valid", "signed as "+kind+" signs", "2xx", v.Sign(key, validID, now, "longhook.check", body), body))

	id := newID("badsig")
	b := providerEvent(id)
	out = append(out, send("bad-signature", "signed with a secret the receiver does not have", "4xx", v.Sign(foreign, id, now, "longhook.check", b), b))
	id = newID("nosig")
	h := v.Sign(key, id, now, "longhook.check", providerEvent(id))
	h.Del(v.Header())
	out = append(out, send("missing-signature", "no "+v.Header()+" header", "4xx", h, providerEvent(id)))
	id = newID("tampered")
	b = providerEvent(id)
	h = v.Sign(key, id, now, "longhook.check", b)
	out = append(out, send("tampered-body", "body changed after signing", "4xx", h, append(bytes.Clone(b[:len(b)-1]), []byte(`,"extra":1}`)...)))
	if v.Timestamped() {
		id = newID("stale")
		b = providerEvent(id)
		out = append(out, send("stale-timestamp", "signed 10 minutes ago (the provider's tolerance is 5 minutes)", "4xx", v.Sign(key, id, now.Add(-10*time.Minute), "longhook.check", b), b))
		id = newID("future")
		b = providerEvent(id)
		out = append(out, send("future-timestamp", "timestamp 10 minutes ahead", "4xx", v.Sign(key, id, now.Add(10*time.Minute), "longhook.check", b), b))
	}
	what := "same delivery id"
	if v.IDHeader() == "" {
		what = "same event (its id is in the body)"
	}
	out = append(out, send("redelivery", what+" again, re-signed: acknowledge it", "2xx", v.Sign(key, validID, time.Now(), "longhook.check", body), body))
	if v.IDHeader() != "" {
		out = append(out, send("redelivery-not-reprocessed",
			"same "+v.IDHeader()+", body that cannot be processed: a deduplicating receiver acknowledges without processing", "2xx",
			v.Sign(key, validID, time.Now(), "longhook.check", unprocessable), unprocessable))
	}
	if kind == verify.KindStripe {
		id = newID("rotation")
		b = providerEvent(id)
		ts := time.Now()
		first := v.Sign(foreign, id, ts, "", b).Get("Stripe-Signature")
		_, second, _ := strings.Cut(v.Sign(key, id, ts, "", b).Get("Stripe-Signature"), ",")
		out = append(out, send("rotation", "two v1 signatures, only the second matches: accept", "2xx",
			http.Header{"Stripe-Signature": {first + "," + second}}, b))
	}
	return out, nil
}

// providerEvent is a JSON event that every preset can take its id and
// type from: Stripe reads "id" and "type", Slack "event_id" and
// "event.type".
func providerEvent(id string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"object":"event","type":"longhook.check","event_id":%q,"event":{"type":"longhook.check"},"created":%d,"data":{"object":{"check":"longhook"}}}`,
		id, id, time.Now().Unix())
}

// sendHeaders posts body with the given headers and judges the status
// against expect ("2xx" or "4xx").
func (c *checker) sendHeaders(ctx context.Context, name, scheme, about, expect string, h http.Header, body []byte) Result {
	res := Result{Case: name, Scheme: scheme, About: about, Expected: expect}
	if c.unreachable != nil {
		res.NotRun = true
		return res
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.target, bytes.NewReader(body))
	if err != nil {
		res.Error = err.Error()
		return res
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "longhook-check")
	start := time.Now()
	resp, err := c.client.Do(req)
	res.Millis = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		if isDialError(err) {
			// No connection at all: every later case would fail the same
			// way, so they are not run and the error is reported once.
			c.unreachable = err
			res.Error = "unreachable"
			return res
		}
		// The URL is the same in every row; the error after it is not.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		res.Error = err.Error()
		return res
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	res.Status = resp.StatusCode
	switch expect {
	case "2xx":
		res.Pass = resp.StatusCode >= 200 && resp.StatusCode < 300
	case "4xx":
		res.Pass = resp.StatusCode >= 400 && resp.StatusCode < 500
	}
	return res
}

// isDialError reports whether err means no connection to the receiver
// could be made (refused, no route, name not found, dial timeout), as
// opposed to a receiver that answered badly or dropped the connection.
func isDialError(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &dns) || (errors.As(err, &op) && op.Op == "dial")
}
