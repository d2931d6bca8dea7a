//go:build !unix

package gateway

// diskFree is unknown here: /readyz does not report a full disk.
func diskFree(string) (uint64, bool) { return 0, false }
