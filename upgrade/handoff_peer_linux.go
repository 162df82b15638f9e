package upgrade

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// peerPID returns the PID of the process at the other end of c, as the
// kernel recorded it when c was connected (SO_PEERCRED): for the old
// process, the one that connected; for the new one, the one that listened.
func peerPID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, fmt.Errorf("SO_PEERCRED: %w", cerr)
	}
	return int(cred.Pid), nil
}

// isChild reports whether the process pid is a child of this one, from
// /proc (see childOf).
func isChild(pid int) (bool, error) { return childOf("/proc", pid) }

// childOf reports whether the process pid is a child of this one, from
// proc/<pid>/stat ("pid (comm) state ppid ..."; comm may hold spaces and
// parentheses, so the fields are read after the last ')'). A pid whose
// stat cannot be read or parsed is not a child. If proc has no stat of
// this process either (no procfs mounted there), the check cannot be
// made: the error wraps errNoPeerCred.
func childOf(proc string, pid int) (bool, error) {
	b, err := os.ReadFile(proc + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if _, serr := os.Stat(proc + "/" + strconv.Itoa(os.Getpid()) + "/stat"); serr != nil {
			return false, fmt.Errorf("%w: no parent of a process read in %s: %w", errNoPeerCred, proc, serr)
		}
		return false, nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false, nil
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return false, nil
	}
	ppid, err := strconv.Atoi(string(f[1]))
	return err == nil && ppid == os.Getpid(), nil
}
