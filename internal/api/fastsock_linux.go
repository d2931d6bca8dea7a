//go:build linux && (amd64 || arm64)

package api

import (
	"syscall"
	"unsafe"
)

// TCP_INQ (Linux 4.18): recvmsg says, in a control message, how many bytes
// the receive queue still holds after the read (1 once a FIN came).
const (
	tcpInq   = 36
	tcpCmInq = tcpInq
)

// enableInq turns TCP_INQ on for the socket.
func enableInq(rc syscall.RawConn) bool {
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		err = syscall.SetsockoptInt(int(fd), syscall.SOL_TCP, tcpInq, 1)
	}); cerr != nil {
		return false
	}
	return err == nil
}

// inqState is a connection's recvmsg arguments, kept so that a read
// allocates nothing.
type inqState struct {
	msg syscall.Msghdr
	iov syscall.Iovec
	oob [64]byte
}

// recv reads into p (not empty) with recvmsg and returns the bytes read
// and how many the socket still holds (-1 if the kernel did not say).
func (st *inqState) recv(fd uintptr, p []byte) (n, inq int, err error) {
	st.iov.Base = &p[0]
	st.iov.SetLen(len(p))
	st.msg.Iov = &st.iov
	st.msg.Iovlen = 1
	st.msg.Control = &st.oob[0]
	st.msg.SetControllen(len(st.oob))
	r, _, e := syscall.Syscall(syscall.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&st.msg)), 0)
	st.iov.Base, st.msg.Iov, st.msg.Control = nil, nil, nil
	if e != 0 {
		return 0, -1, e
	}
	if raceEnabled {
		// syscall.Read tells the race detector that a read happens after
		// the writes that sent its bytes (every test synchronising
		// through a socket relies on it); recvmsg does not. A read of
		// nothing through it does, in race builds only.
		_, _ = syscall.Read(int(fd), nil)
	}
	inq = -1
	if int(st.msg.Controllen) >= syscall.CmsgLen(4) {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&st.oob[0]))
		if h.Level == syscall.SOL_TCP && h.Type == tcpCmInq {
			inq = int(*(*int32)(unsafe.Pointer(&st.oob[syscall.CmsgLen(0)])))
		}
	}
	return int(r), inq, nil
}
