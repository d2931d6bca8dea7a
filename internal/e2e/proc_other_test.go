//go:build !linux

package e2e

import "os/exec"

// setPdeathsig is Linux-only; elsewhere Cleanup alone stops serve.
func setPdeathsig(*exec.Cmd) {}
