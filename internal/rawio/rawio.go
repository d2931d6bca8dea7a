// Package rawio writes to non-blocking sockets in one system call that
// keeps the goroutine's processor (issue 20).
//
// syscall.Write, which net.Conn.Write and RawConn callbacks use, tells the
// scheduler it enters a system call that may block: the runtime's sysmon
// then hands the goroutine's processor to another thread when it finds the
// call still running on its next tick (20 µs to 10 ms apart), and the
// thread that made the call, back with no processor, parks its goroutine
// and sleeps. A write to a non-blocking socket never blocks — it copies
// the bytes, and on loopback also runs the receiver's side of TCP, which is
// CPU work like any other — so that hand-off only adds a thread wake-up, a
// sleep and a goroutine hand-off, and each one resets sysmon to its 20 µs
// polling for a millisecond. Write here is the raw system call on Linux.
// Under the race detector it is syscall.Write, whose annotations order a
// write before the read of its bytes in the same process.
package rawio

import (
	"errors"
	"net"
	"syscall"
)

// Writer writes to one socket with Write, in non-blocking system calls; a
// socket whose buffer is full is waited for through the runtime's poller,
// within the connection's write deadline, as net.Conn.Write does. It is
// for one writer at a time.
type Writer struct {
	raw syscall.RawConn
	try func(fd uintptr) bool // w.tryWrite, bound once
	p   []byte
	n   int
	err error
}

// NewWriter returns a Writer for c, or nil when c is not a socket this
// package writes to (the caller writes through c).
func NewWriter(c net.Conn) *Writer {
	if !Supported {
		return nil
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &Writer{raw: raw}
	w.try = w.tryWrite
	return w
}

// errShortWrite is a write that took nothing and reported no error.
var errShortWrite = errors.New("rawio: write took no bytes")

// Write writes all of p, or reports why it could not (the socket's error,
// or os.ErrDeadlineExceeded once the write deadline passed while the
// socket's buffer was full).
func (w *Writer) Write(p []byte) (int, error) {
	w.p, w.n, w.err = p, 0, nil
	err := w.raw.Write(w.try)
	n := w.n
	if err == nil {
		err = w.err
	}
	w.p, w.err = nil, nil
	return n, err
}

// tryWrite is RawConn.Write's callback: false asks it to wait until the
// socket can take more.
func (w *Writer) tryWrite(fd uintptr) bool {
	for w.n < len(w.p) {
		n, err := Write(fd, w.p[w.n:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false
		case err != nil:
			w.err = err
			return true
		case n <= 0:
			w.err = errShortWrite
			return true
		}
		w.n += n
	}
	return true
}
