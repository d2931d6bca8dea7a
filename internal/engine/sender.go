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
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

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
		ReadBufferSize:                32 << 10, // also the limit of response headers
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
	if err := req.URI().Parse(nil, []byte(uri)); err != nil || !validScheme(req.URI().Scheme()) || len(req.URI().Host()) == 0 {
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
	if left := timeout - time.Since(start); left > 0 && closedBeforeResponse(err) && s.aborts.Load() == aborts {
		// A kept-alive connection that the receiver closed while it was
		// idle (or closes as the request is written) fails before any
		// response byte: send once more at once, on a new connection (a
		// second pooled one may be just as stale), as net/http does. The
		// failed try is not an attempt; what the resend gets is.
		req.SetTimeout(left)
		req.SetConnectionClose()
		err = s.fresh.Do(req, resp)
	}
	if err != nil {
		lat := time.Since(start)
		f := classifyError(ctx, err)
		return Result{Outcome: f, Latency: lat, Err: f.Err}
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

// closedBeforeResponse reports whether err is a connection closed or
// reset before any byte of the response came back.
func closedBeforeResponse(err error) bool {
	return errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
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

// trackedConn is a connection of the sender. Besides letting Abort close
// it, it saves a system call per attempt: a request is not written when
// fasthttp flushes it but kept until fasthttp reads the answer, and then
// written and waited for in one step (writeThenRead). Read first, as
// net.Conn.Read does, the answer is not there yet — a receiver in
// another process cannot have answered a request written microseconds
// before — so every attempt paid a read returning EAGAIN before it
// waited. See docs/design.md, "A request is written and its answer
// waited for in one step".
type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once

	raw syscall.RawConn // nil: writes are never held back
	// mu guards pending: Abort may close the connection while an
	// attempt writes to it.
	mu      sync.Mutex
	pending []byte // written to the connection, not yet to the socket
	// readAt is when the last read returned (zero: never): only a
	// connection read from within heldIdle holds a request back.
	readAt time.Time
	// wdl is the write deadline last asked for. It is set on the socket
	// only before a write that may wait (wdlSet): a held request is
	// written without waiting, within the read deadline, so most
	// attempts set one deadline instead of two.
	wdl    time.Time
	wdlSet bool

	// writeThenRead's state, kept here so that its callback (step,
	// bound once) allocates nothing per attempt.
	step    func(fd uintptr) bool
	out, in []byte // to write; to read into
	wrote   int    // of out
	waiting bool   // out is written: the next step reads
	n       int
	err     error
}

// Requests of up to heldMax bytes are held back until the answer is read
// (a larger one is written at once, as is what follows it). A request
// is held only on a connection that answered less than heldIdle ago: a
// receiver that closed an idle connection has queued its end already,
// which a read finds at once but writeThenRead only learns of by the
// receiver's reset (one round trip later; never, where a firewall drops
// resets).
const (
	heldMax  = 16 << 10
	heldIdle = 250 * time.Millisecond
)

func (cs *connSet) dial(d *net.Dialer, addr string) (net.Conn, error) {
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, set: cs}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			tc.raw = raw
			tc.step = tc.rawStep
		}
	}
	cs.mu.Lock()
	cs.m[tc] = struct{}{}
	cs.mu.Unlock()
	return tc, nil
}

// Write holds p back for the next Read when it can (see trackedConn);
// otherwise it writes what was held and p.
func (c *trackedConn) Write(p []byte) (int, error) {
	if c.raw == nil {
		return c.Conn.Write(p)
	}
	c.mu.Lock()
	if len(c.pending)+len(p) <= heldMax && (len(c.pending) > 0 || c.readAt.IsZero() || time.Since(c.readAt) < heldIdle) {
		c.pending = append(c.pending, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	held := c.pending
	c.pending = nil
	c.mu.Unlock()
	if err := c.writeDeadline(); err != nil {
		return 0, err
	}
	if len(held) > 0 {
		if _, err := c.Conn.Write(held); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
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

// writeDeadline sets the recorded write deadline on the socket.
func (c *trackedConn) writeDeadline() error {
	if c.wdlSet {
		return nil
	}
	c.wdlSet = true
	return c.Conn.SetWriteDeadline(c.wdl)
}

// Read writes a held request and waits for the answer, or reads.
func (c *trackedConn) Read(p []byte) (n int, err error) {
	var held []byte
	if c.raw != nil {
		c.mu.Lock()
		if len(c.pending) > 0 {
			held, c.pending = c.pending, nil
		}
		c.mu.Unlock()
	}
	if held == nil {
		n, err = c.Conn.Read(p)
	} else {
		n, err = c.writeThenRead(held, p)
		if cap(held) <= 4<<10 {
			c.mu.Lock()
			if c.pending == nil {
				c.pending = held[:0] // the next request's buffer
			}
			c.mu.Unlock()
		}
	}
	c.readAt = time.Now()
	return n, err
}

// writeThenRead writes out and reads the answer into in, with no read
// before the answer can be there: the socket is waited on (within the
// read deadline) right after the write. Only what arrives after the
// write can answer it, and that wakes the wait: the poller is armed
// before the write (RawConn.Read resets the readiness it had recorded,
// then calls rawStep, which writes).
func (c *trackedConn) writeThenRead(out, in []byte) (int, error) {
	c.out, c.in, c.wrote, c.waiting, c.n, c.err = out, in, 0, false, 0, nil
	err := c.raw.Read(c.step)
	n, serr, wrote := c.n, c.err, c.wrote
	c.out, c.in, c.err = nil, nil, nil
	switch {
	case err != nil: // deadline, or closed
		return 0, err
	case serr != nil:
		return 0, serr
	case !c.waiting:
		// The socket took part of the request only: the rest is written
		// the ordinary way (within the write deadline), then read.
		if err := c.writeDeadline(); err != nil {
			return 0, err
		}
		if _, err := c.Conn.Write(out[wrote:]); err != nil {
			return 0, err
		}
		return c.Conn.Read(in)
	case n == 0 && len(in) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// rawStep is writeThenRead's callback: the first call writes and asks to
// wait; the next ones read, until something (or an error) came.
func (c *trackedConn) rawStep(fd uintptr) bool {
	if !c.waiting {
		for c.wrote < len(c.out) {
			k, err := syscall.Write(int(fd), c.out[c.wrote:])
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				return true // full: writeThenRead writes the rest
			case err != nil:
				c.err = c.opError("write", err)
				return true
			}
			c.wrote += k
		}
		c.waiting = true
		return false
	}
	for {
		n, err := syscall.Read(int(fd), c.in)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false // woken early: wait again
		case err != nil:
			c.err = c.opError("read", err)
		default:
			c.n = n
		}
		return true
	}
}

func (c *trackedConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, err)}
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.set.mu.Lock()
		delete(c.set.m, c)
		c.set.mu.Unlock()
	})
	c.mu.Lock()
	held := c.pending
	c.pending = nil
	c.mu.Unlock()
	if len(held) > 0 {
		// What was written and never followed by a read (a TLS
		// close_notify): sent if the socket takes it now, without waiting.
		_ = c.raw.Write(func(fd uintptr) bool {
			_, _ = syscall.Write(int(fd), held)
			return true
		})
	}
	return c.Conn.Close()
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
