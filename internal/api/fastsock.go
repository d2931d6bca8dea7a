package api

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// fastSock is what a fast-path connection's bufio.Reader reads from. It
// reads the connection as net.Conn does, except in one place: between
// requests with nothing buffered, on Linux TCP, it reads through
// RawConn.Read and serves the whole publishes it finds right there
// (design.md, "The publish fast path": "No read that finds nothing").
//
// Why: net.Conn.Read always tries the read system call first and waits on
// the poller only when it finds nothing. Right after the fast path answers
// a request, the client cannot have sent its next one yet, so that read
// nearly always finds nothing (EAGAIN: 0.70 per publish under the bench).
// Waiting first is only safe while nothing can have arrived unnoticed,
// and Go's poller forgets: RawConn.Read (as every read) clears the
// socket's pending readiness before its first try, so a request or a FIN
// that arrived between an earlier read and this call would not wake a wait
// that comes first. Within one RawConn.Read, though, every arrival after
// that clearing is noticed (the poller is edge-triggered on each). So the
// read stays inside its RawConn.Read across requests: it reads with
// recvmsg and TCP_INQ, which also tells how many bytes the socket still
// holds (1 once the peer's FIN came, even with no bytes left: a client
// that half-closes with its last request is read to its end at once); a
// read that brought exactly whole publish requests and left the socket
// empty serves them (the handler runs, the answer is written) and then
// waits for the socket to be readable without reading it. Anything else —
// part of a request, another route, a body still arriving, bytes after the
// whole requests, the end, an error — goes back to the bufio.Reader, and
// so to the fast path's ordinary handling.
type fastSock struct {
	c *fastConn
	// between: the fast path waits for its next request with nothing
	// buffered (not the connection's first): a read may serve in place.
	between bool
	tried   bool // TCP_INQ tried
	rc      syscall.RawConn

	// The read in progress: RawConn.Read's callback and its result.
	p    []byte
	n    int
	err  error
	wait bool // the callback's next call waits before it reads
	fn   func(fd uintptr) bool
	inq  inqState

	// For tests: system calls that read, how many found nothing, and the
	// requests served in place.
	reads, empty, served int64
}

// errFastClosed ends a connection whose answer, served in place, said so.
var errFastClosed = errors.New("fast path: connection closes after its answer")

// Read reads from the connection.
func (s *fastSock) Read(p []byte) (int, error) {
	if !s.between || len(p) == 0 {
		return s.c.rwc.Read(p)
	}
	if !s.tried {
		s.tried = true
		s.rc = rawInq(s.c.rwc)
		s.fn = s.read
	}
	if s.rc == nil {
		return s.c.rwc.Read(p)
	}
	s.p, s.n, s.err, s.wait = p, 0, nil, false
	err := s.rc.Read(s.fn)
	s.p = nil
	if err != nil {
		return 0, err // a deadline passed, the connection was closed
	}
	return s.n, s.err
}

// read is RawConn.Read's callback: false waits until the socket is
// readable (or a deadline passes), true ends the Read with s.n, s.err.
func (s *fastSock) read(fd uintptr) bool {
	for {
		if s.wait {
			s.wait = false
			return false
		}
		s.reads++
		n, inq, err := s.inq.recv(fd, s.p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			s.empty++
			return false
		case err != nil:
			s.err = &net.OpError{Op: "read", Net: "tcp", Source: s.c.rwc.LocalAddr(), Addr: s.c.rwc.RemoteAddr(),
				Err: os.NewSyscallError("recvmsg", err)}
			return true
		case n == 0:
			s.err = io.EOF
			return true
		}
		k, keep := s.c.serveInPlace(s.p[:n])
		if k > 0 && keep {
			keep = s.c.idleAgain()
		}
		switch {
		case !keep:
			s.err = errFastClosed
			return true
		case k < n: // what is left goes to the ordinary path
			s.n = copy(s.p, s.p[k:n])
			return true
		case inq != 0: // more bytes, or the end, are there already
			continue
		}
		s.wait = true
	}
}

// serveInPlace serves the whole publish requests at the start of b (a
// read's bytes, nothing before them buffered) and returns how many bytes
// they took, and whether the connection stays open. It stops at the first
// request that is not a whole publish head followed by its whole body.
func (c *fastConn) serveInPlace(b []byte) (int, bool) {
	k := 0
	for {
		n, verdict := scanHead(b[k:])
		if verdict != headHot {
			return k, true
		}
		req, ok := c.parse(string(b[k : k+n]))
		if !ok || int64(len(b)-k-n) < req.ContentLength {
			return k, true
		}
		c.idle.Store(false)
		body := b[k+n : k+n+int(req.ContentLength)]
		k += n + len(body)
		c.sock.served++
		c.body = fastBody{src: body, remain: int64(len(body))}
		if !c.answer(req) {
			return k, false
		}
	}
}

// idleAgain prepares the wait for the next request, as the serve loop
// does before it reads: the idle deadline, and the Shutdown check. It
// reports whether the connection stays open.
func (c *fastConn) idleAgain() bool {
	c.setRead(time.Now(), c.f.srv.IdleTimeout, c.f.srv.ReadTimeout, true)
	c.idle.Store(true)
	return !c.f.closed.Load()
}

// rawInq returns the connection's RawConn with TCP_INQ on, or nil where
// that is not available (not TCP, not Linux).
func rawInq(conn net.Conn) syscall.RawConn {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil || !enableInq(rc) {
		return nil
	}
	return rc
}
