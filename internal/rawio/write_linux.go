//go:build linux && !race

package rawio

import (
	"syscall"
	"unsafe"
)

// Supported tells whether Write writes (it does wherever sockets are file
// descriptors).
const Supported = true

// Write is one write(2) of p on fd without telling the scheduler: fd must
// be non-blocking (a socket the runtime's poller owns).
func Write(fd uintptr, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(ptr), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
