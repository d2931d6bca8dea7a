//go:build !unix

package engine

import "errors"

// rawWrite has no one-call socket write here (a Windows socket is not a
// file descriptor): trackedConn.Write then writes the ordinary way, with
// its deadline, as it does when the socket's buffer is full.
func rawWrite(fd uintptr, p []byte) (int, error) { return 0, errors.ErrUnsupported }
