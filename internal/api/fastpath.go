package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/longhook/longhook/internal/rawio"
)

// The publish fast path (docs/design.md, "The publish fast path").
//
// Every publish is one HTTP/1.1 request on a kept-alive connection, and
// net/http's per-request work outside the handler cost about as much CPU as
// the handler: on this kind of machine, where a system call is expensive,
// mostly the read it starts in a goroutine of its own once a request's
// body is read (to notice a client going away) — a goroutine, a read that
// finds nothing, a deadline set in the past to stop it and one to clear
// it, per request — and the deadlines it sets on every request.
//
// FastListener sits between the listener and http.Server.Serve. It reads
// each accepted connection's requests itself while they are plain
// publishes — POST /{v}/events or /{v}/events:batchPublish, HTTP/1.1, no
// query, a Content-Length, every header line plain ASCII with nothing
// net/http treats specially (Transfer-Encoding, Expect, Upgrade, Pragma,
// Trailer, a Connection other than keep-alive or close), no
// Content-Encoding — calls the server's handler with them and writes
// each response in one write. It
// decides from the buffered bytes of a request's head, without consuming
// any: the first request that is anything else (another route, HTTP/1.0, a
// malformed or unusual head) is handed, with the connection and every byte
// still unread, to http.Server.Serve, which serves that connection from
// then on exactly as it serves any other. So net/http keeps deciding and
// wording every refusal, and every route but the two publishes never sees
// the fast path.
//
// What differs on the fast path: a publish's context is cancelled when its
// connection closes, not when the client goes away mid-request (a publish
// commits fully or not at all either way); the server's ConnState and
// ConnContext hooks do not see a connection until it is handed over; read
// and write deadlines are refreshed at most once a second, so an idle
// connection is closed between IdleTimeout − 1 s and IdleTimeout after its
// last request, and a response may take up to a second less than
// WriteTimeout; a body that cannot be read to its Content-Length closes the
// connection without an answer (net/http answers an error nobody reads).

// FastListener is a net.Listener for http.Server.Serve that serves the
// publish requests of each connection itself (see above). Close it through
// the server (Shutdown or Close), then Wait for the connections it still
// serves. It is for plain HTTP only: under TLS, serve the listener as is.
type FastListener struct {
	ln      net.Listener
	srv     *http.Server
	handler http.Handler
	errLog  *log.Logger

	handoff   chan net.Conn
	acceptErr chan error
	done      chan struct{}
	closed    atomic.Bool
	start     sync.Once
	closeOnce sync.Once

	mu    sync.Mutex
	conns map[*fastConn]struct{}
	wg    sync.WaitGroup

	served atomic.Int64 // requests answered (Served)
}

// NewFastListener wraps ln for srv, whose Handler (the API's, from
// NewServer), timeouts, BaseContext and ErrorLog the fast path uses.
func NewFastListener(ln net.Listener, srv *http.Server) *FastListener {
	h := srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	errLog := srv.ErrorLog
	if errLog == nil {
		errLog = log.Default()
	}
	return &FastListener{
		ln: ln, srv: srv, handler: h, errLog: errLog,
		handoff: make(chan net.Conn), acceptErr: make(chan error), done: make(chan struct{}),
		conns: map[*fastConn]struct{}{},
	}
}

// Accept returns the next connection for net/http: one the fast path
// handed over. Accept errors of the wrapped listener are passed on.
func (f *FastListener) Accept() (net.Conn, error) {
	f.start.Do(func() { go f.acceptLoop() })
	select {
	case c := <-f.handoff:
		return c, nil
	case err := <-f.acceptErr:
		return nil, err
	case <-f.done:
		return nil, net.ErrClosed
	}
}

// Addr is the wrapped listener's address.
func (f *FastListener) Addr() net.Addr { return f.ln.Addr() }

// Close stops accepting, closes the connections waiting for their next
// request and lets the others finish the request they are serving.
// http.Server.Shutdown and Close call it.
func (f *FastListener) Close() error {
	var err error
	f.closeOnce.Do(func() {
		f.closed.Store(true)
		close(f.done)
		err = f.ln.Close()
		f.mu.Lock()
		for c := range f.conns {
			if c.idle.Load() {
				_ = c.rwc.SetReadDeadline(aLongTimeAgo)
			}
		}
		f.mu.Unlock()
	})
	return err
}

// Wait waits until every connection the fast path serves has closed (after
// Close) or ctx ends.
func (f *FastListener) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Served is the number of requests the fast path has answered.
func (f *FastListener) Served() int64 { return f.served.Load() }

// aLongTimeAgo is a deadline in the past: it ends a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

func (f *FastListener) acceptLoop() {
	base := context.Background()
	if f.srv.BaseContext != nil {
		base = f.srv.BaseContext(f)
	}
	base = context.WithValue(base, http.ServerContextKey, f.srv)
	for {
		rwc, err := f.ln.Accept()
		if err != nil {
			select {
			case f.acceptErr <- err:
			case <-f.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // net/http decides: it backs off before its next Accept, or returns
		}
		c := &fastConn{f: f, rwc: rwc, wr: rawio.NewWriter(rwc)}
		f.mu.Lock()
		if f.closed.Load() {
			f.mu.Unlock()
			_ = rwc.Close()
			return
		}
		f.conns[c] = struct{}{}
		f.wg.Add(1)
		f.mu.Unlock()
		go c.serve(base)
	}
}

// fastConn is one connection the fast path serves.
type fastConn struct {
	f   *FastListener
	rwc net.Conn
	// Writes the answers in non-blocking system calls that keep the
	// processor (nil: through rwc).
	wr   *rawio.Writer
	br   *bufio.Reader
	idle atomic.Bool // waiting for its next request (Close ends the wait)
	// The connection closes after an answer it wrote (lingerClose).
	answered bool

	tmpl http.Request // what every request of the connection shares: its context, remote address
	body fastBody
	resp fastResponse
	out  []byte
	// A request's header map and value slices, reused by the next (the
	// API's handlers keep neither past their return).
	hdr  http.Header
	vals []string
	// The Date value of the second dateSec.
	dateSec int64
	dateVal []byte

	// The deadlines last set; a coarse one is kept while it is less than
	// a second older than it would be if set now (every write deadline is).
	readDL, writeDL       time.Time
	readCoarse            bool
	readDLSet, writeDLSet bool
}

// fastHeadMax is the longest request head the fast path reads (its
// buffer); a longer one goes to net/http, which applies MaxHeaderBytes.
const fastHeadMax = 4 << 10

// maxFastResponse is the largest response buffer a connection keeps for
// its next response.
const maxFastResponse = 64 << 10

var fastReaderPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, fastHeadMax) }}

func (c *fastConn) serve(base context.Context) {
	f := c.f
	handed := false
	ctx, cancel := context.WithCancel(context.WithValue(base, http.LocalAddrContextKey, c.rwc.LocalAddr()))
	defer func() {
		cancel()
		if !handed {
			if c.answered {
				c.lingerClose()
			} else {
				_ = c.rwc.Close()
			}
			if c.br != nil {
				c.br.Reset(nil)
				fastReaderPool.Put(c.br)
			}
		}
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
		f.wg.Done()
	}()
	c.br = fastReaderPool.Get().(*bufio.Reader)
	c.br.Reset(c.rwc)
	c.tmpl = *(&http.Request{
		Method: http.MethodPost, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		RemoteAddr: c.rwc.RemoteAddr().String(),
	}).WithContext(ctx)
	c.resp.header = make(http.Header, 4)

	first := true
	for {
		// Wait for the next request: net/http's header timeout for the
		// first, its idle timeout between requests.
		now := time.Now()
		if first {
			c.setRead(now, f.srv.ReadHeaderTimeout, f.srv.ReadTimeout, false)
		} else {
			c.setRead(now, f.srv.IdleTimeout, f.srv.ReadTimeout, true)
		}
		c.idle.Store(true)
		if f.closed.Load() {
			return
		}
		head, hot, err := c.peekHead(first)
		c.idle.Store(false)
		if err != nil {
			return
		}
		if !hot {
			handed = c.handOver()
			return
		}
		first = false
		if !c.serveOne(head) {
			return
		}
	}
}

// setRead sets the read deadline now + d (or + fallback when d is 0, as
// net/http's idleTimeout and readHeaderTimeout fall back on ReadTimeout;
// none when both are 0). A coarse deadline already set that is less than
// a second older than the new one is kept: an idle connection waits for
// its next request without a timer update per request.
func (c *fastConn) setRead(now time.Time, d, fallback time.Duration, coarse bool) {
	if d == 0 {
		d = fallback
	}
	if d <= 0 {
		if c.readDLSet {
			_ = c.rwc.SetReadDeadline(time.Time{})
			c.readDLSet = false
		}
		return
	}
	t := now.Add(d)
	if coarse && c.readDLSet && c.readCoarse && !t.Before(c.readDL) && t.Sub(c.readDL) < time.Second {
		return
	}
	_ = c.rwc.SetReadDeadline(t)
	c.readDL, c.readCoarse, c.readDLSet = t, coarse, true
}

// setWrite sets the write deadline now + WriteTimeout, coarsely as setRead.
func (c *fastConn) setWrite(now time.Time) {
	d := c.f.srv.WriteTimeout
	if d <= 0 {
		return
	}
	t := now.Add(d)
	if c.writeDLSet && !t.Before(c.writeDL) && t.Sub(c.writeDL) < time.Second {
		return
	}
	_ = c.rwc.SetWriteDeadline(t)
	c.writeDL, c.writeDLSet = t, true
}

// peekHead waits until the buffered bytes hold a whole request head that
// the fast path takes (hot: head is its length) or tell that it does not
// (not hot). It consumes nothing but the CR and LF bytes net/http drops
// before a request that follows another.
func (c *fastConn) peekHead(first bool) (head int, hot bool, err error) {
	// idle: between requests, under the idle timeout until a request
	// begins. skipped: the empty lines before it are dropped (or none may
	// be: a connection's first request).
	idle, skipped := !first, first
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		if !skipped && len(buf) >= 4 {
			// After a POST (every request the fast path serves), net/http
			// drops the CR and LF bytes among the 4 it waited for before
			// it reads the next request (RFC 9112 §2.2: old clients end
			// a body with CRLF). A connection handed over would not: drop
			// them here, once, and read what follows as net/http does,
			// without waiting for 4 more bytes.
			skipped = true
			if k := leadingCRorLF(buf[:4]); k > 0 {
				_, _ = c.br.Discard(k)
				first = true
				continue
			}
		}
		n, verdict := scanHead(buf)
		switch verdict {
		case headHot:
			return n, true, nil
		case headOther:
			if first || len(buf) >= 4 {
				return 0, false, nil
			}
			// Between requests net/http reads one only once 4 bytes
			// came: wait for them as it does.
		}
		if len(buf) == c.br.Size() {
			return 0, false, nil // longer than fastHeadMax: net/http's
		}
		if idle && (skipped && len(buf) > 0 || len(buf) > leadingCRorLF(buf)) {
			// A request has begun: from now on it gets net/http's
			// header timeout, not the idle one. Empty lines that are
			// still to be dropped are no request (a client that ended
			// its last body with CRLF, then went idle, is idle).
			c.setRead(time.Now(), c.f.srv.ReadHeaderTimeout, c.f.srv.ReadTimeout, false)
			idle = false
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			if err == io.EOF && (first && len(buf) > 0 || len(buf) >= 4) {
				// The client ended a head the fast path cannot judge:
				// net/http answers it (400) as it would have. (Between
				// requests net/http waits for 4 bytes before it reads
				// one, and closes without an answer if they never come.)
				return 0, false, nil
			}
			return 0, false, err
		}
	}
}

// leadingCRorLF is how many bytes at the start of b are CR or LF.
func leadingCRorLF(b []byte) int {
	n := 0
	for n < len(b) && (b[n] == '\r' || b[n] == '\n') {
		n++
	}
	return n
}

// handOver gives the connection, with its unread bytes, to net/http.
func (c *fastConn) handOver() bool {
	hc := &handedConn{Conn: c.rwc, br: c.br}
	if c.br.Buffered() == 0 {
		hc.br = nil
		c.br.Reset(nil)
		fastReaderPool.Put(c.br)
	}
	c.br = nil
	// net/http sets its own deadlines as it reads; clear ours.
	_ = c.rwc.SetDeadline(time.Time{})
	select {
	case c.f.handoff <- hc:
		return true
	case <-c.f.done:
		return false
	}
}

// serveOne serves the request whose head is the first n buffered bytes,
// and reports whether the connection stays open.
func (c *fastConn) serveOne(n int) bool {
	f := c.f
	buf, _ := c.br.Peek(n)
	req, ok := c.parse(string(buf))
	if !ok {
		return false // scanHead took what parse refuses: cannot happen
	}
	_, _ = c.br.Discard(n)
	if c.br.Buffered() < int(req.ContentLength) {
		// The body is still arriving: net/http's whole-request deadline.
		if d := f.srv.ReadTimeout; d > 0 {
			start := time.Now()
			_ = c.rwc.SetReadDeadline(start.Add(d))
			c.readDL, c.readCoarse, c.readDLSet = start.Add(d), false, true
		}
	}
	c.body = fastBody{br: c.br, remain: req.ContentLength}
	req.Body = &c.body
	w := &c.resp
	w.reset()

	if !c.call(w, req) {
		return false
	}
	if c.body.err != nil {
		return false // the body could not be read: the client went away or stalled
	}
	// An unread body is read and dropped before the answer, as net/http
	// does, up to 256 kB; beyond, the connection closes after it.
	keep := !req.Close && !f.closed.Load()
	if c.body.remain > 256<<10 {
		keep = false
	} else if c.body.remain > 0 {
		if _, err := c.br.Discard(int(c.body.remain)); err != nil {
			return false
		}
	}
	c.body = fastBody{}
	now := time.Now()
	c.out = w.appendResponse(c.out[:0], keep, c.date(now))
	c.setWrite(now)
	f.served.Add(1) // before the write: a client that has the answer sees it counted
	var err error
	if c.wr != nil {
		_, err = c.wr.Write(c.out)
	} else {
		_, err = c.rwc.Write(c.out)
	}
	if cap(c.out) > maxFastResponse {
		c.out = nil
	}
	w.body = w.body[:0]
	if cap(w.body) > maxFastResponse {
		w.body = nil
	}
	c.answered = err == nil && !keep
	return err == nil && keep
}

// lingerTime and lingerBytes bound how long, and how many of the
// client's bytes, lingerClose waits and reads: net/http's wait after an
// answer that closes a connection (rstAvoidanceDelay), and the rest of the
// largest body the fast path takes and a request head after it.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = fastMaxBody + fastHeadMax
)

// lingerClose closes a connection after an answer that said so, without
// losing that answer: closing a socket with bytes received and unread
// (the rest of a body the handler did not read, a pipelined request)
// resets it, and the reset drops whatever of the answer the client has
// not received yet. So the connection is half-closed (the client reads
// the answer, then end of stream), and what the client still sends is
// read and dropped until it closes its side, for at most lingerTime and
// lingerBytes — the same bound net/http gives a closing connection
// (closeWriteAndWait, which sleeps rather than reads) — and then closed.
func (c *fastConn) lingerClose() {
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		_ = c.rwc.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.CopyN(io.Discard, c.rwc, lingerBytes)
	}
	_ = c.rwc.Close()
}

// call runs the handler; a panic closes the connection (logged unless it
// is http.ErrAbortHandler), as net/http does.
func (c *fastConn) call(w *fastResponse, r *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			if v != http.ErrAbortHandler {
				const size = 64 << 10
				buf := make([]byte, size)
				buf = buf[:runtime.Stack(buf, false)]
				c.f.errLog.Printf("http: panic serving %v: %v\n%s", r.RemoteAddr, v, buf)
			}
		}
	}()
	c.f.handler.ServeHTTP(w, r)
	return true
}

// handedConn is a connection handed to net/http: the bytes the fast path
// buffered come first.
type handedConn struct {
	net.Conn
	br *bufio.Reader // nil once drained
}

func (c *handedConn) Read(p []byte) (int, error) {
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return c.br.Read(p) // from the buffer only: it holds bytes
		}
		c.br.Reset(nil)
		fastReaderPool.Put(c.br)
		c.br = nil
	}
	return c.Conn.Read(p)
}

// CloseWrite lets net/http half-close the connection (it does before
// closing one it refuses).
func (c *handedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// ReadFrom keeps net/http's sendfile path for file downloads.
func (c *handedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(c.Conn, r)
}

// String names the connection in net/http's logs.
func (c *handedConn) String() string {
	return fmt.Sprintf("%v->%v", c.RemoteAddr(), c.LocalAddr())
}
