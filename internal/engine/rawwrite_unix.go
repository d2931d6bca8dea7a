//go:build unix

package engine

import "syscall"

// rawWrite is one write(2) of p on the socket fd (trackedConn.tryWrite).
func rawWrite(fd uintptr, p []byte) (int, error) { return syscall.Write(int(fd), p) }
