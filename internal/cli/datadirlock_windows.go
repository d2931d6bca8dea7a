//go:build windows

package cli

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// removeLocked: Windows does not remove a file that is open (os.OpenFile
// does not share delete access), so a refused start leaves the lock file.
const removeLocked = false

// lockOffset is the byte LockFileEx locks: far past the holder's lines,
// which a locked range would keep others from reading.
const lockOffset = 1 << 40

// tryLockFile takes an exclusive lock on f without waiting; false when
// another handle holds it. Closing f releases it, as does the process's
// end.
func tryLockFile(f *os.File) (bool, error) {
	ol := &windows.Overlapped{Offset: uint32(lockOffset & 0xffffffff), OffsetHigh: uint32(lockOffset >> 32)}
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, windows.ERROR_LOCK_VIOLATION), errors.Is(err, windows.ERROR_IO_PENDING):
		return false, nil
	default:
		return false, err
	}
}
