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
// so every frame costs two pwrite system calls — two of the eleven a
// single-publish delivery made (docs/benchmarks.md, "Performance round
// 2"). walVFSName is SQLite's own unix VFS with one change for WAL files:
// a 24-byte write is held, and the next write, when it starts where the
// header ends, goes out with the header in front of it as one pwrite.
// Anything else on the file (another write, a read, a sync, a truncate,
// its size, a file control, its close) writes a held header first, so
// the file reads as if both writes had been made; and as SQLite writes a
// frame's page right after its header, a header is never held once the
// call that appends the frame returns. Nothing else changes: the main
// database file, its shared memory and locks are the unix VFS's.
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
	held    int64 // offset of the held header, or -1
	buf     uintptr
	bufSize int64
	hdr     [walFrameHeader]byte
}

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
	*stateOf(pFile) = walFileState{held: -1}
	f.FpMethods = uintptr(unsafe.Pointer(&walMethods))
	return rc
}

// flush writes a held header.
func flush(tls *libc.TLS, pFile uintptr) int32 {
	s := stateOf(pFile)
	if s.held < 0 {
		return lib.SQLITE_OK
	}
	off := s.held
	s.held = -1
	return (*(*rwFn)(unsafe.Pointer(&origMethods().FxWrite)))(tls, pFile, uintptr(unsafe.Pointer(&s.hdr[0])), walFrameHeader, off)
}

func walWrite(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	s := stateOf(pFile)
	write := *(*rwFn)(unsafe.Pointer(&origMethods().FxWrite))
	if iAmt == walFrameHeader {
		if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
			return rc
		}
		s.hdr = *(*[walFrameHeader]byte)(ptr(zBuf))
		s.held = iOfst
		return lib.SQLITE_OK
	}
	if s.held < 0 || iOfst != s.held+walFrameHeader || iAmt <= 0 {
		if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
			return rc
		}
		return write(tls, pFile, zBuf, iAmt, iOfst)
	}
	n := int64(iAmt) + walFrameHeader
	if s.bufSize < n {
		if s.buf != 0 {
			libc.Xfree(tls, s.buf)
		}
		s.buf = libc.Xmalloc(tls, uint64(n))
		if s.buf == 0 {
			s.bufSize = 0
			if rc := flush(tls, pFile); rc != lib.SQLITE_OK {
				return rc
			}
			return write(tls, pFile, zBuf, iAmt, iOfst)
		}
		s.bufSize = n
	}
	*(*[walFrameHeader]byte)(ptr(s.buf)) = s.hdr
	copy(bytesAt(s.buf+walFrameHeader, int(iAmt)), bytesAt(zBuf, int(iAmt)))
	off := s.held
	s.held = -1
	return write(tls, pFile, s.buf, int32(n), off)
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
