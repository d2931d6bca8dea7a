package e2e

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill serve if the test binary dies, so a
// crashed or interrupted test run leaves no server behind.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
