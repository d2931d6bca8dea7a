package engine

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// MaxResponseBytes is how much of a destination's response body is read
// and recorded.
const MaxResponseBytes = 4 << 10

// errBlocked is returned by the dial guard for a refused address.
var errBlocked = errors.New("destination address is not allowed")

// SenderConfig configures the outbound HTTP client.
type SenderConfig struct {
	Policy          core.AddressPolicy
	ConnectTimeout  time.Duration // default 5 s
	AttemptTimeout  time.Duration // default 15 s
	MaxConnsPerHost int           // idle connections kept per host; default 64
	UserAgent       string
}

// Sender makes delivery attempts. It owns its http.Transport: keep-alive,
// a connect timeout, no redirects, a capped response read, and an SSRF
// guard that checks every resolved IP at dial time (so DNS rebinding cannot
// bypass it).
type Sender struct {
	cfg    SenderConfig
	client *http.Client
}

// NewSender returns a Sender.
func NewSender(cfg SenderConfig) *Sender {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = 15 * time.Second
	}
	if cfg.MaxConnsPerHost == 0 {
		cfg.MaxConnsPerHost = 64
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "longhook"
	}
	policy := cfg.Policy
	dialer := &net.Dialer{
		Timeout:   cfg.ConnectTimeout,
		KeepAlive: 30 * time.Second,
		// Control runs after DNS resolution, on the address actually dialed.
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", errBlocked, address)
			}
			if !policy.AddrAllowed(ap.Addr()) {
				return fmt.Errorf("%w: %s", errBlocked, ap.Addr())
			}
			return nil
		},
	}
	tr := &http.Transport{
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   cfg.MaxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.AttemptTimeout,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		Proxy:                 nil, // never route deliveries through an environment proxy
	}
	return &Sender{cfg: cfg, client: &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a 3xx is a failed attempt, never followed
		},
	}}
}

// Request is one attempt to send.
type Request struct {
	URI     string
	Body    []byte
	Headers [][2]string
}

// Result is what an attempt produced.
type Result struct {
	Outcome    core.Outcome
	StatusCode int
	Latency    time.Duration
	Response   []byte
	Err        string
}

// Send makes one attempt and classifies its outcome.
func (s *Sender) Send(ctx context.Context, r Request) Result {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URI, bytes.NewReader(r.Body))
	if err != nil {
		f := &core.Failure{Kind: core.FailInvalid, Err: "invalid destination URI"}
		return Result{Outcome: f, Err: f.Err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	for _, h := range r.Headers {
		req.Header[h[0]] = []string{h[1]}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		lat := time.Since(start)
		f := classifyError(ctx, err)
		return Result{Outcome: f, Latency: lat, Err: f.Err}
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	// Drain a little more so the connection can be reused; give up on
	// larger bodies rather than read them.
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
	lat := time.Since(start)
	res := Result{StatusCode: resp.StatusCode, Latency: lat, Response: body}
	res.Outcome = classifyStatus(resp)
	if f, ok := res.Outcome.(*core.Failure); ok {
		res.Err = f.Error()
	}
	return res
}

// CloseIdle closes idle connections.
func (s *Sender) CloseIdle() { s.client.CloseIdleConnections() }

func classifyStatus(resp *http.Response) core.Outcome {
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return core.Success{StatusCode: code}
	case code >= 300 && code < 400:
		return &core.Failure{Kind: core.FailRedirect, StatusCode: code}
	case code == http.StatusGone:
		return &core.Failure{Kind: core.FailGone, StatusCode: code}
	case code == http.StatusTooManyRequests:
		return &core.Failure{Kind: core.FailThrottled, StatusCode: code, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	case code == http.StatusServiceUnavailable:
		return &core.Failure{Kind: core.FailUnavailable, StatusCode: code, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	default:
		return &core.Failure{Kind: core.FailHTTPStatus, StatusCode: code}
	}
}

// retryAfter parses delay-seconds or an HTTP date; 0 if absent or invalid.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

func classifyError(ctx context.Context, err error) *core.Failure {
	var ne net.Error
	switch {
	case errors.Is(err, errBlocked):
		return &core.Failure{Kind: core.FailBlocked, Err: "blocked: the destination resolves to a private, loopback or reserved address"}
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &core.Failure{Kind: core.FailTimeout, Err: "timeout"}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &core.Failure{Kind: core.FailConnection, Err: "connection refused"}
	case errors.Is(err, syscall.ECONNRESET):
		return &core.Failure{Kind: core.FailConnection, Err: "connection reset"}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return &core.Failure{Kind: core.FailConnection, Err: "dns: " + dnsErr.Err}
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return &core.Failure{Kind: core.FailConnection, Err: "tls: certificate verification failed"}
	}
	return &core.Failure{Kind: core.FailConnection, Err: trimErr(err)}
}

// trimErr keeps an error message short and free of the request URL (which
// could carry tokens in its query).
func trimErr(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			err = inner
		}
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}
