//go:build !unix

package rawio

import "errors"

// Supported tells whether Write writes: not here, where a socket is not a
// file descriptor; callers write through the connection.
const Supported = false

// Write is not supported here.
func Write(fd uintptr, p []byte) (int, error) { return 0, errors.ErrUnsupported }
