//go:build !linux || !(amd64 || arm64)

package api

import "syscall"

// enableInq: TCP_INQ is Linux's (read here on amd64 and arm64); elsewhere the fast path reads as net.Conn
// does.
func enableInq(syscall.RawConn) bool { return false }

// inqState is unused off Linux.
type inqState struct{}

func (*inqState) recv(uintptr, []byte) (int, int, error) { return 0, -1, syscall.EINVAL }
