//go:build !unix && !windows

package cli

import "os"

const removeLocked = false

// tryLockFile: no advisory locks here; one serve per database is the
// operator's to keep.
func tryLockFile(*os.File) (bool, error) { return true, nil }
