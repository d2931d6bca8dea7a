package sqlite

import (
	"fmt"
	"sync"
	"unsafe"

	"modernc.org/libc"
	lib "modernc.org/sqlite/lib"
)

// The WAL frame VFS. SQLite appends a WAL frame in two writes: its
// 24-byte header, then the page right after it (wal.c, walWriteOneFrame),
// and a commit appends its frames one after another, so a commit of n
// pages cost 2n pwrite system calls — two of the eleven a single-publish
// delivery made (docs/benchmarks.md, "Performance round 2").
// walVFSName is SQLite's own unix VFS with one change for WAL files: the
// frames a commit appends are gathered in a buffer and written as one
// pwrite when the commit's last frame arrives (a frame header whose
// database-size field is not zero marks it: the WAL format's commit
// frame), or when the next frame would not fit in walGatherMax. Anything else on the
// file (a write elsewhere, a read, a sync, a truncate, its size, a file
// control, its close) writes what is gathered first, so the file reads as
// if every write had been made; and as the commit frame is written before
// SQLite publishes the commit in the WAL index, no reader ever looks for
// a frame still in the buffer, and a commit has reached the file before
// it returns. Nothing else changes: the main database file, its shared
// memory and locks are the unix VFS's.
const walVFSName = "unix-longhook-wal"

const walFrameHeader = 24

var (
	walVFSOnce sync.Once
	walVFSErr  error

	walVFS     lib.Tsqlite3_vfs
	unixVFS    uintptr // SQLite's default VFS
	unixOpenFn uintptr
	fileSize   uintptr // the unix VFS's szOsFile, rounded up to 8: where walFileState starts

	walMethodsMu sync.Mutex
	walMethods   lib.Tsqlite3_io_methods
	walOrig      uintptr // the methods walMethods wraps (the unix VFS's)
)

// walFileState follows the unix VFS's file structure in each file this
// VFS opens (szOsFile is enlarged for it); used for WAL files only.
type walFileState struct {
	off     int64 // file offset of the gathered bytes' first, or -1
	n       int64 // bytes gathered in buf
	page    bool  // the last thing gathered is a frame header: its page comes next
	commit  bool  // that header is a commit frame's
	size    int64 // the last page's size (SQLite's largest until one is seen)
	buf     uintptr
	bufSize int64
}

// walGatherMax bounds a gathered write: the unix VFS writes at most
// 0x1ffff bytes in one call (os_unix.c, seekAndWriteFd), so a large
// commit's frames go out in writes of as many whole frames as fit.
const walGatherMax = 0x1ffff

type (
	openFn       = func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32
	closeFn      = func(*libc.TLS, uintptr) int32
	rwFn         = func(*libc.TLS, uintptr, uintptr, int32, int64) int32
	truncateFn   = func(*libc.TLS, uintptr, int64) int32
	syncFn       = func(*libc.TLS, uintptr, int32) int32
	fileSizeFn   = func(*libc.TLS, uintptr, uintptr) int32
	fileCtlFn    = func(*libc.TLS, uintptr, int32, uintptr) int32
	walMethodTab = lib.Tsqlite3_io_methods
)

// ptr turns an address SQLite handed over into a pointer (C memory,
// never the Go heap's).
func ptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

func bytesAt(p uintptr, n int) []byte { return unsafe.Slice((*byte)(ptr(p)), n) }

func stateOf(pFile uintptr) *walFileState { return (*walFileState)(ptr(pFile + fileSize)) }

func origMethods() *walMethodTab { return (*walMethodTab)(ptr(walOrig)) }

// registerWALVFS registers walVFSName once.
func registerWALVFS() error {
	walVFSOnce.Do(func() {
		tls := libc.NewTLS()
		defer tls.Close()
		unixVFS = lib.Xsqlite3_vfs_find(tls, 0)
		if unixVFS == 0 {
			walVFSErr = fmt.Errorf("sqlite: no default VFS")
			return
		}
		walVFS = *(*lib.Tsqlite3_vfs)(ptr(unixVFS))
		name, err := libc.CString(walVFSName)
		if err != nil {
			walVFSErr = err
			return
		}
		fileSize = uintptr(walVFS.FszOsFile+7) &^ 7
		walVFS.FszOsFile = int32(fileSize + unsafe.Sizeof(walFileState{}))
		walVFS.FzName = name
		walVFS.FpNext = 0
		unixOpenFn = walVFS.FxOpen
		*(*openFn)(unsafe.Pointer(&walVFS.FxOpen)) = walOpen
		if rc := lib.Xsqlite3_vfs_register(tls, uintptr(unsafe.Pointer(&walVFS)), 0); rc != lib.SQLITE_OK {
			walVFSErr = fmt.Errorf("sqlite: register the WAL frame VFS: code %d", rc)
		}
	})
	return walVFSErr
}

func walOpen(tls *libc.TLS, pVfs, zName, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	rc := (*(*openFn)(unsafe.Pointer(&unixOpenFn)))(tls, unixVFS, zName, pFile, flags, pOutFlags)
	if rc != lib.SQLITE_OK || flags&lib.SQLITE_OPEN_WAL == 0 {
		return rc
	}
	f := (*lib.Tsqlite3_file)(ptr(pFile))
	walMethodsMu.Lock()
	if walOrig == 0 {
		walOrig = f.FpMethods
		walMethods = *origMethods()
		*(*closeFn)(unsafe.Pointer(&walMethods.FxClose)) = walClose
		*(*rwFn)(unsafe.Pointer(&walMethods.FxRead)) = walRead
		*(*rwFn)(unsafe.Pointer(&walMethods.FxWrite)) = walWrite
		*(*truncateFn)(unsafe.Pointer(&walMethods.FxTruncate)) = walTruncate
		*(*syncFn)(unsafe.Pointer(&walMethods.FxSync)) = walSync
		*(*fileSizeFn)(unsafe.Pointer(&walMethods.FxFileSize)) = walFileSize
		*(*fileCtlFn)(unsafe.Pointer(&walMethods.FxFileControl)) = walFileControl
	}
	same := walOrig == f.FpMethods
	walMethodsMu.Unlock()
	if !same { // another locking style: left as the unix VFS made it
		return rc
	}
	*stateOf(pFile) = walFileState{off: -1, size: 65536}
	f.FpMethods = uintptr(unsafe.Pointer(&walMethods))
	return rc
}

// flush writes what is gathered.
func flush(tls *libc.TLS, pFile uintptr) int32 {
	s := stateOf(pFile)
	if s.off < 0 {
		return lib.SQLITE_OK
	}
	off, n := s.off, s.n
	s.off, s.n, s.page, s.commit = -1, 0, false, false
	return (*(*rwFn)(unsafe.Pointer(&origMethods().FxWrite)))(tls, pFile, s.buf, int32(n), off)
}

// gather appends n bytes at zBuf to the buffer, growing it; false when it
// could not grow (nothing was appended).
func gather(tls *libc.TLS, s *walFileState, zBuf uintptr, n int64) bool {
	if s.n+n > s.bufSize {
		size := max(2*s.bufSize, 64<<10, s.n+n)
		buf := libc.Xrealloc(tls, s.buf, uint64(size))
		if buf == 0 {
			return false
		}
		s.buf, s.bufSize = buf, size
	}
	copy(bytesAt(s.buf+uintptr(s.n), int(n)), bytesAt(zBuf, int(n)))
	s.n += n
	return true
}

func walWrite(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	s := stateOf(pFile)
	write := *(*rwFn)(unsafe.Pointer(&origMethods().FxWrite))
	n := int64(iAmt)
	switch {
	case iAmt == walFrameHeader && !s.page:
		// A frame's header: gathered after the frames before it, unless
		// it starts elsewhere or the buffer is full.
		if s.off >= 0 && (iOfst != s.off+s.n || s.n+n+s.size > walGatherMax) {
			if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
				return rc
			}
		}
		if !gather(tls, s, zBuf, n) {
			if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
				return rc
			}
			return write(tls, pFile, zBuf, iAmt, iOfst)
		}
		if s.off < 0 {
			s.off = iOfst
		}
		// Bytes 4-7: the database size after a commit frame, 0 in others.
		h := bytesAt(zBuf, walFrameHeader)
		s.page, s.commit = true, h[4]|h[5]|h[6]|h[7] != 0
		return lib.SQLITE_OK
	case s.page && iAmt > 0 && iOfst == s.off+s.n:
		// The page of the header just gathered.
		s.size = n
		if s.n+n > walGatherMax || !gather(tls, s, zBuf, n) {
			if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
				return rc
			}
			return write(tls, pFile, zBuf, iAmt, iOfst)
		}
		s.page = false
		if s.commit {
			return flush(tls, pFile)
		}
		return lib.SQLITE_OK
	}
	if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
		return rc
	}
	return write(tls, pFile, zBuf, iAmt, iOfst)
}

func walClose(tls *libc.TLS, pFile uintptr) int32 {
	rc := flush(tls, pFile)
	s := stateOf(pFile)
	if s.buf != 0 {
		libc.Xfree(tls, s.buf)
		s.buf, s.bufSize = 0, 0
	}
	if rc2 := (*(*closeFn)(unsafe.Pointer(&origMethods().FxClose)))(tls, pFile); rc == lib.SQLITE_OK {
		rc = rc2
	}
	return rc
}

func walRead(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
		return rc
	}
	return (*(*rwFn)(unsafe.Pointer(&origMethods().FxRead)))(tls, pFile, zBuf, iAmt, iOfst)
}

func walTruncate(tls *libc.TLS, pFile uintptr, size int64) int32 {
	if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
		return rc
	}
	return (*(*truncateFn)(unsafe.Pointer(&origMethods().FxTruncate)))(tls, pFile, size)
}

func walSync(tls *libc.TLS, pFile uintptr, flags int32) int32 {
	if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
		return rc
	}
	return (*(*syncFn)(unsafe.Pointer(&origMethods().FxSync)))(tls, pFile, flags)
}

func walFileSize(tls *libc.TLS, pFile, pSize uintptr) int32 {
	if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
		return rc
	}
	return (*(*fileSizeFn)(unsafe.Pointer(&origMethods().FxFileSize)))(tls, pFile, pSize)
}

func walFileControl(tls *libc.TLS, pFile uintptr, op int32, pArg uintptr) int32 {
	if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
		return rc
	}
	return (*(*fileCtlFn)(unsafe.Pointer(&origMethods().FxFileControl)))(tls, pFile, op, pArg)
}
