// Package client is a typed client for longhook's REST API: webhooks,
// events, deliveries and the live deliveries stream. It uses only the
// standard library. The longhook CLI is built on it.
//
// # Errors
//
// When the server answers with an error, a method returns an *Error with
// the Google error envelope's code (the HTTP status), status
// (INVALID_ARGUMENT, NOT_FOUND, ...) and message (what was wrong, in
// words). Match it with errors.Is against ErrNotFound, ErrInvalidArgument and
// the other sentinels, or with errors.As to read the message. An answer
// without the envelope (a proxy's error page) is an *Error too, with the
// status of its HTTP code. Anything else (the server cannot be reached, ctx
// ended) is returned as the HTTP client gave it: errors.Is(err,
// context.Canceled) and errors.Is(err, context.DeadlineExceeded) work.
//
// # Timeouts and retries
//
// Every method takes a context, which bounds the whole call; the default HTTP
// client (http.DefaultClient) has no timeout of its own, so give calls a
// deadline or pass a client with one ([WithHTTPClient]). The client does not
// retry. ErrUnavailable and ErrResourceExhausted, and network errors, are
// worth retrying after a pause; Publish is safe to retry only with an
// IdempotencyKey (without one, a publish whose answer was lost and is sent
// again publishes the event twice). Reads, UpdateWebhook, EnableWebhook and
// DisableWebhook are safe to retry; a retried DeleteWebhook may answer
// ErrNotFound. CreateWebhook (a second webhook), RotateSigningSecret (a
// second new secret), PingWebhook, Redeliver and Recover (sent again) are
// not.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// DefaultServer is where a longhook serve listens by default.
const DefaultServer = "http://127.0.0.1:8080"

// Client calls one longhook server with one API key. It is safe for
// concurrent use.
type Client struct {
	base      *url.URL
	key       string
	hc        *http.Client
	userAgent string
	version   string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: http.DefaultClient). The
// deliveries stream is long-lived: give it a client without a Timeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithAPIVersion sets the path prefix: "v1" (default), "v1beta" or
// "v1alpha"; the server answers the same on each.
func WithAPIVersion(v string) Option { return func(c *Client) { c.version = v } }

// New returns a client of the server at serverURL (e.g.
// "http://127.0.0.1:8080"; empty means DefaultServer) authenticating with
// apiKey.
func New(serverURL, apiKey string, opts ...Option) (*Client, error) {
	if serverURL == "" {
		serverURL = DefaultServer
	}
	u, err := url.Parse(strings.TrimRight(serverURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("client: server URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: server URL %q: want http://host:port or https://host", serverURL)
	}
	c := &Client{base: u, key: apiKey, hc: http.DefaultClient, userAgent: "longhook-client", version: "v1"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Error is an error answered by the server, in Google's error envelope.
type Error struct {
	// Code is the HTTP status code.
	Code int `json:"code"`
	// Message says what was wrong, in words (e.g. which field and its valid
	// values).
	Message string `json:"message"`
	// Status is the Google status name: INVALID_ARGUMENT, NOT_FOUND, ...
	Status string `json:"status"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%d %s", e.Code, e.Status)
	}
	return fmt.Sprintf("%s (%d %s)", e.Message, e.Code, e.Status)
}

// Is matches the sentinels by Status: errors.Is(err, client.ErrNotFound).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Status == e.Status
}

// Sentinels for errors.Is; they match any *Error with their Status.
// ErrUnavailable and ErrResourceExhausted are worth retrying after a pause
// (Publish with an IdempotencyKey is safe to retry); the others are not.
var (
	ErrInvalidArgument    = &Error{Code: 400, Status: "INVALID_ARGUMENT"}
	ErrFailedPrecondition = &Error{Code: 400, Status: "FAILED_PRECONDITION"}
	ErrUnauthenticated    = &Error{Code: 401, Status: "UNAUTHENTICATED"}
	ErrPermissionDenied   = &Error{Code: 403, Status: "PERMISSION_DENIED"}
	ErrNotFound           = &Error{Code: 404, Status: "NOT_FOUND"}
	ErrAlreadyExists      = &Error{Code: 409, Status: "ALREADY_EXISTS"}
	ErrResourceExhausted  = &Error{Code: 429, Status: "RESOURCE_EXHAUSTED"}
	ErrInternal           = &Error{Code: 500, Status: "INTERNAL"}
	ErrUnimplemented      = &Error{Code: 501, Status: "UNIMPLEMENTED"}
	ErrUnavailable        = &Error{Code: 503, Status: "UNAVAILABLE"}
)

// statusOf names the Google status of an HTTP status code, for answers
// without an envelope (a proxy's or load balancer's error page), so that
// errors.Is with the sentinels works on them too.
func statusOf(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusConflict:
		return "ALREADY_EXISTS"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusInternalServerError:
		return "INTERNAL"
	case http.StatusNotImplemented:
		return "UNIMPLEMENTED"
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	return "UNKNOWN"
}

// url builds a versioned API URL.
func (c *Client) url(path string, q url.Values) string {
	u := *c.base
	u.Path = c.base.Path + "/" + c.version + path
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// newRequest builds an authenticated request; body is marshalled as JSON
// unless nil.
func (c *Client) newRequest(ctx context.Context, method, rawURL string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("client: encode request: %w", err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("x-goog-api-key", c.key)
	}
	req.Header.Set("User-Agent", c.userAgent)
	return req, nil
}

// do sends a JSON request and decodes a JSON answer into out (if non-nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any, header ...string) error {
	_, err := c.send(ctx, method, path, q, body, out, header...)
	return err
}

// send is do that also returns the answer's headers (nil with an error).
func (c *Client) send(ctx context.Context, method, path string, q url.Values, body, out any, header ...string) (http.Header, error) {
	req, err := c.newRequest(ctx, method, c.url(path, q), body)
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("client: read %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, errorFrom(resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("client: decode %s %s: %w", method, path, err)
		}
	}
	return resp.Header, nil
}

// errorFrom reads a Google error envelope, or describes another answer (a
// proxy's error page) with the Google status of its HTTP code and its text
// as the message.
func errorFrom(status int, body []byte) error {
	var env struct {
		Error *Error `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error != nil {
		if env.Error.Code == 0 {
			env.Error.Code = status
		}
		if env.Error.Status == "" {
			env.Error.Status = statusOf(env.Error.Code)
		}
		return env.Error
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &Error{Code: status, Status: statusOf(status), Message: msg}
}

// Health calls GET /readyz: nil when the server is ready to serve.
func (c *Client) Health(ctx context.Context) error {
	u := *c.base
	u.Path = c.base.Path + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &Error{Code: resp.StatusCode, Status: "UNAVAILABLE", Message: "server not ready"}
	}
	return nil
}

// errEmptyID guards path building.
var errEmptyID = errors.New("client: empty id")

func escape(id string) (string, error) {
	if id == "" {
		return "", errEmptyID
	}
	return url.PathEscape(id), nil
}

// BaseURL is the server URL the client calls.
func (c *Client) BaseURL() string { return c.base.String() }
