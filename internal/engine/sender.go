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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/rawio"
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
	MaxConnsPerHost int           // connections per host; default 64
	UserAgent       string
	// TLS is the TLS client configuration for https destinations
	// (default: system roots, TLS 1.2 or later).
	TLS *tls.Config
}

// Sender makes delivery attempts over HTTP/1.1 with its own client
// (fasthttp: a delivery costs the sender about a third of the CPU of
// net/http's client, see docs/design.md): keep-alive, a connect timeout,
// an attempt deadline, no redirects, a capped response read, no proxy, and
// an SSRF guard that checks every resolved IP at dial time (so DNS
// rebinding cannot bypass it).
type Sender struct {
	cfg    SenderConfig
	client *fasthttp.Client
	fresh  *fasthttp.Client // resends: a new connection each, never pooled
	conns  connSet
	aborts atomic.Uint64 // Abort calls
	uris   uriCache
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
	s := &Sender{cfg: cfg}
	s.conns.m = map[*trackedConn]struct{}{}
	s.client = s.newClient(dialer)
	s.fresh = s.newClient(dialer)
	return s
}

// IdleConnTimeout is how long a kept-alive connection may stay idle
// before the sender closes it: under the idle timeouts receivers commonly
// use (Node.js's default keepAliveTimeout is 5 s, Apache's 5 s), so the
// sender does not pick a connection the receiver is closing or has
// closed. The receiver's idle clock starts when it sent the response,
// the sender's once it read it.
const IdleConnTimeout = 4 * time.Second

// readBufferSize is the sender's read buffer per connection, also the
// limit of a response's headers.
const readBufferSize = 32 << 10

func (s *Sender) newClient(dialer *net.Dialer) *fasthttp.Client {
	cfg := s.cfg
	return &fasthttp.Client{
		Name:                cfg.UserAgent,
		Dial:                func(addr string) (net.Conn, error) { return s.conns.dial(dialer, addr) },
		TLSConfig:           tlsConfig(cfg.TLS),
		MaxConnsPerHost:     cfg.MaxConnsPerHost,
		MaxConnWaitTimeout:  cfg.AttemptTimeout,
		MaxIdleConnDuration: IdleConnTimeout,
		// Without a write timeout fasthttp leaves the TLS handshake to the
		// first write, with no read deadline: a receiver that accepts and
		// never answers the ClientHello would hold the attempt forever.
		// With it, the handshake is bounded too.
		WriteTimeout: cfg.AttemptTimeout,
		// The most recently used idle connection first: the least likely
		// to be closing, and the others expire instead of rotating.
		ConnPoolStrategy:              fasthttp.LIFO,
		ReadBufferSize:                readBufferSize,
		StreamResponseBody:            true,
		DisableHeaderNamesNormalizing: true, // webhook-id, not Webhook-Id
		DisablePathNormalizing:        true, // the URI exactly as configured
		// Send decides about retrying on a fresh connection.
		RetryIfErr: func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
	}
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
	// Aborted: longhook ended the attempt itself (hard stop), not the
	// receiver; the outcome says nothing about the destination.
	Aborted bool
}

// Send makes one attempt and classifies its outcome. The attempt ends at
// AttemptTimeout or at ctx's deadline, whichever is first; Abort ends it
// at once.
func (s *Sender) Send(ctx context.Context, r Request) Result {
	return s.send(ctx, r.URI, r.Body, r.Headers)
}

// send is Send with the request's fields apart: the body is kept by the
// request (it escapes), the headers are not, and apart from the body
// they can stay on the caller's stack.
func (s *Sender) send(ctx context.Context, uri string, body []byte, headers [][2]string) Result {
	if err := ctx.Err(); err != nil {
		if errors.Is(err, context.Canceled) {
			f := errAborted() // hard stop before the request went out
			return Result{Outcome: f, Err: f.Err, Aborted: true}
		}
		f := classifyError(ctx, err)
		return Result{Outcome: f, Err: f.Err}
	}
	timeout := s.cfg.AttemptTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	if !s.uris.set(req, uri) {
		f := &core.Failure{Kind: core.FailInvalid, Err: "invalid destination URI"}
		return Result{Outcome: f, Err: f.Err}
	}
	req.Header.DisableNormalizing()
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	// Add, not Set: the request is fresh and the names are distinct, so
	// nothing is looked for or sanitised twice.
	for _, h := range headers {
		req.Header.Add(h[0], h[1])
	}
	req.SetBodyRaw(body)
	req.SetTimeout(timeout)
	start := time.Now()
	aborts := s.aborts.Load()
	err := s.client.Do(req, resp)
	// The clock is read for the resend only: most attempts do not need it.
	if closedBeforeResponse(err) && s.aborts.Load() == aborts && reusedConn(resp, start) {
		if left := timeout - time.Since(start); left > 0 {
			// A kept-alive connection that the receiver closed while it
			// was idle (or closes as the request is written) fails before
			// any response byte: send once more at once, on a new
			// connection (a second pooled one may be just as stale), as
			// net/http does. The failed try is not an attempt; what the
			// resend gets is. Not on a connection made for this attempt:
			// it was not stale, the receiver took the request and ended
			// the connection, and a resend would hand the request over
			// twice in one recorded attempt.
			req.SetTimeout(left)
			req.SetConnectionClose()
			err = s.fresh.Do(req, resp)
		}
	}
	if err != nil {
		lat := time.Since(start)
		f := classifyError(ctx, err)
		aborted := s.aborts.Load() != aborts || errors.Is(ctx.Err(), context.Canceled)
		if aborted {
			// Ended by this side (hard stop), not by the receiver: the
			// closed connection would otherwise read as the receiver's.
			f = errAborted()
		}
		return Result{Outcome: f, Latency: lat, Err: f.Err, Aborted: aborted}
	}
	var got []byte
	if rs := resp.BodyStream(); rs != nil {
		got, _ = io.ReadAll(io.LimitReader(rs, MaxResponseBytes))
		// Drain a little more so the connection can be reused; give up
		// on larger bodies (the connection is closed) rather than read them.
		_, _ = io.CopyN(io.Discard, rs, 64<<10)
		_ = resp.CloseBodyStream()
	} else if b := resp.Body(); len(b) > 0 {
		got = bytes.Clone(b[:min(len(b), MaxResponseBytes)])
	}
	lat := time.Since(start)
	res := Result{StatusCode: resp.StatusCode(), Latency: lat, Response: got}
	retry := ""
	if res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusServiceUnavailable {
		retry = string(resp.Header.Peek("Retry-After"))
	}
	res.Outcome = classifyStatus(res.StatusCode, retry)
	if f, ok := res.Outcome.(*core.Failure); ok {
		res.Err = f.Error()
	}
	return res
}

// reusedConn reports whether resp's request went out on a connection
// dialed before start, a kept-alive one (or one it cannot tell).
func reusedConn(resp *fasthttp.Response, start time.Time) bool {
	a, ok := resp.LocalAddr().(*connAddr)
	return !ok || a.c.dialed.Before(start)
}

// closedBeforeResponse reports whether err is a connection closed or
// reset before any byte of the response came back.
func closedBeforeResponse(err error) bool {
	return errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// uriCache holds destination URIs parsed once, shared by every attempt
// to them: an attempt copies the parsed URI into its request (SetURI)
// instead of parsing and normalising the string again. A cached URI is
// only read once stored. The cache holds at most maxCachedURIs URIs of
// up to maxCachedURILen bytes and starts over when full (bounded like
// the engine's other caches); longer URIs are parsed per attempt.
type uriCache struct {
	m sync.Map // string → *fasthttp.URI, or invalidURI
	n atomic.Int64
}

const (
	maxCachedURIs   = 4096
	maxCachedURILen = 1024
)

// invalidURI is cached for a URI that is not an http or https URI with
// a host.
var invalidURI = new(fasthttp.URI)

// set sets req's URI to uri and reports whether uri is a valid
// destination URI.
func (c *uriCache) set(req *fasthttp.Request, uri string) bool {
	if len(uri) > maxCachedURILen {
		u := req.URI()
		return parseURI(u, uri)
	}
	v, ok := c.m.Load(uri)
	if !ok {
		u := new(fasthttp.URI)
		if !parseURI(u, uri) {
			u = invalidURI
		}
		if c.n.Add(1) > maxCachedURIs {
			c.m.Clear()
			c.n.Store(1)
		}
		c.m.Store(uri, u)
		v = u
	}
	u := v.(*fasthttp.URI)
	if u == invalidURI {
		return false
	}
	req.SetURI(u)
	return true
}

// parseURI parses uri into u and reports whether it is an http or https
// URI with a host.
func parseURI(u *fasthttp.URI, uri string) bool {
	return u.Parse(nil, []byte(uri)) == nil && validScheme(u.Scheme()) && len(u.Host()) > 0
}

func tlsConfig(c *tls.Config) *tls.Config {
	if c == nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	c = c.Clone()
	c.MinVersion = max(c.MinVersion, tls.VersionTLS12)
	return c
}

func validScheme(s []byte) bool {
	return string(s) == "http" || string(s) == "https"
}

// CloseIdle closes idle connections.
func (s *Sender) CloseIdle() {
	s.client.CloseIdleConnections()
	s.fresh.CloseIdleConnections()
}

// Abort closes every connection, idle or in use: attempts in flight end
// at once with an error. The engine calls it at hard stop.
func (s *Sender) Abort() {
	s.aborts.Add(1)
	s.conns.closeAll()
}

// connSet tracks the sender's open connections so Abort can close them.
type connSet struct {
	mu sync.Mutex
	m  map[*trackedConn]struct{}
}

type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once

	// The write deadline goes on the socket only before a write that may
	// wait: fasthttp sets it before every request, and a request the
	// socket takes whole in one write system call (nearly all of them)
	// never waits, so most attempts arm one deadline timer (the read's)
	// instead of two. Writes and write deadlines come from one goroutine
	// at a time (the attempt's, or crypto/tls's under its lock).
	dialed time.Time // when the connection was made
	laddr  connAddr  // the local address, leading back to the connection

	raw    syscall.RawConn // nil: deadlines go straight to the socket
	wdl    time.Time       // the write deadline last asked for
	wdlSet bool            // wdl is on the socket
	// tryWrite's state, kept here so that its callback (bound once)
	// allocates nothing per write.
	try  func(fd uintptr) bool
	wp   []byte
	wn   int
	werr error
}

func (cs *connSet) dial(d *net.Dialer, addr string) (net.Conn, error) {
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, set: cs, dialed: time.Now()}
	tc.laddr = connAddr{Addr: c.LocalAddr(), c: tc}
	if t, ok := c.(*net.TCPConn); ok {
		if raw, err := t.SyscallConn(); err == nil {
			tc.raw = raw
			tc.try = tc.tryWrite
		}
	}
	cs.mu.Lock()
	cs.m[tc] = struct{}{}
	cs.mu.Unlock()
	return tc, nil
}

// connAddr is a connection's local address that leads back to the
// connection: fasthttp records it in the response before it writes the
// request (Response.LocalAddr), so a send that failed can tell which
// connection it used, however it ended.
type connAddr struct {
	net.Addr
	c *trackedConn
}

// LocalAddr returns the connection's local address as a *connAddr.
func (c *trackedConn) LocalAddr() net.Addr { return &c.laddr }

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.set.mu.Lock()
		delete(c.set.m, c)
		c.set.mu.Unlock()
	})
	return c.Conn.Close()
}

// SetWriteDeadline records t for the next write that may wait.
func (c *trackedConn) SetWriteDeadline(t time.Time) error {
	if c.raw == nil {
		return c.Conn.SetWriteDeadline(t)
	}
	c.wdl, c.wdlSet = t, false
	return nil
}

// SetDeadline sets the read deadline and records the write deadline.
func (c *trackedConn) SetDeadline(t time.Time) error {
	if c.raw == nil {
		return c.Conn.SetDeadline(t)
	}
	c.wdl, c.wdlSet = t, false
	return c.Conn.SetReadDeadline(t)
}

// Write writes p in one system call, without a deadline, if the socket
// takes it whole; otherwise (the socket's buffer is full, an error, a
// deadline left on the socket that has passed) it sets the recorded
// deadline and writes the rest the ordinary way, which waits within it
// and reports errors as the connection does.
func (c *trackedConn) Write(p []byte) (int, error) {
	if c.raw == nil || c.wdlSet {
		return c.Conn.Write(p)
	}
	c.wp, c.wn, c.werr = p, 0, nil
	err := c.raw.Write(c.try)
	n := c.wn
	if err == nil && c.werr == nil && n == len(p) {
		c.wp = nil
		return n, nil
	}
	c.wp, c.werr = nil, nil
	c.wdlSet = true
	if err := c.Conn.SetWriteDeadline(c.wdl); err != nil {
		return n, err
	}
	m, err := c.Conn.Write(p[n:])
	return n + m, err
}

// tryWrite makes Write's one write system call (RawConn.Write's
// callback: it never waits).
func (c *trackedConn) tryWrite(fd uintptr) bool {
	for {
		n, err := rawio.Write(fd, c.wp)
		if err == syscall.EINTR {
			continue
		}
		c.wn, c.werr = max(n, 0), err
		return true
	}
}

func (cs *connSet) closeAll() {
	cs.mu.Lock()
	conns := make([]*trackedConn, 0, len(cs.m))
	for c := range cs.m {
		conns = append(conns, c)
	}
	cs.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// successes are the outcomes of the 2xx statuses, boxed once instead of
// per attempt.
var successes = func() (s [100]core.Outcome) {
	for i := range s {
		s[i] = core.Success{StatusCode: 200 + i}
	}
	return s
}()

func classifyStatus(code int, retryAfterHeader string) core.Outcome {
	switch {
	case code >= 200 && code < 300:
		return successes[code-200]
	case code >= 300 && code < 400:
		return &core.Failure{Kind: core.FailRedirect, StatusCode: code}
	case code == http.StatusGone:
		return &core.Failure{Kind: core.FailGone, StatusCode: code}
	case code == http.StatusTooManyRequests:
		return &core.Failure{Kind: core.FailThrottled, StatusCode: code, RetryAfter: retryAfter(retryAfterHeader)}
	case code == http.StatusServiceUnavailable:
		return &core.Failure{Kind: core.FailUnavailable, StatusCode: code, RetryAfter: retryAfter(retryAfterHeader)}
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

// errAborted is the failure of an attempt longhook ended itself: Abort
// or the attempt's context cancelled at hard stop, when attempts in
// flight outlast the soft stop.
func errAborted() *core.Failure {
	return &core.Failure{Kind: core.FailConnection, Err: "aborted: longhook was stopping and the attempt outlasted --soft-stop; it is retried"}
}

func classifyError(ctx context.Context, err error) *core.Failure {
	var te interface{ Timeout() bool }
	switch {
	case errors.Is(err, errBlocked):
		return &core.Failure{Kind: core.FailBlocked, Err: "blocked: the destination resolves to a private, loopback or reserved address"}
	case errors.Is(err, fasthttp.ErrTLSHandshakeTimeout):
		return &core.Failure{Kind: core.FailTimeout, Err: "timeout: TLS handshake"}
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.As(err, &te) && te.Timeout():
		return &core.Failure{Kind: core.FailTimeout, Err: "timeout"}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &core.Failure{Kind: core.FailConnection, Err: "connection refused"}
	case errors.Is(err, syscall.ECONNRESET):
		return &core.Failure{Kind: core.FailConnection, Err: "connection reset"}
	// fasthttp's own messages for these give the receiver's or the
	// operator's side advice that does not apply (return "Connection:
	// close", increase ReadBufferSize): the record says what happened.
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, io.EOF):
		return &core.Failure{Kind: core.FailConnection, Err: "connection closed by the destination before a response"}
	case errors.As(err, new(*fasthttp.ErrSmallBuffer)):
		return &core.Failure{Kind: core.FailConnection, Err: "response headers larger than " + strconv.Itoa(readBufferSize>>10) + " KiB"}
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
