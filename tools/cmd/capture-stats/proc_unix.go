//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup puts Chromium in a process group of its own, so that its zygote,
// renderer and utility processes can be stopped together with it.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killProcessGroup kills the process group that ownProcessGroup created for cmd.
func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	// A negative pid addresses the whole group, whose id is Chromium's own pid.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		cmd.Process.Kill()
	}
}
