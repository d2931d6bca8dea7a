//go:build unix && !(linux && !race)

package rawio

import "syscall"

// Supported tells whether Write writes (it does wherever sockets are file
// descriptors).
const Supported = true

// Write is one write(2) of p on fd. Outside Linux (and under the race
// detector, whose annotations it keeps) it is syscall.Write.
func Write(fd uintptr, p []byte) (int, error) {
	n, err := syscall.Write(int(fd), p)
	return max(n, 0), err
}
