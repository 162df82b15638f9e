package testserver

import (
	"os/exec"
	"syscall"
)

// setPdeathsig has the kernel send SIGKILL to cmd's process when the thread
// that started it dies, which for a Go program is in practice when the
// process dies.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
