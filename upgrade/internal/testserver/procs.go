package testserver

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// What the tests and the benchmark ask about the processes they start.

// FreeAddr returns a free host:port on 127.0.0.1 for network ("tcp" or
// "udp"). tableflip v1.2.3 keys inherited sockets by the address asked for,
// so a server must be given a fixed port, not ":0".
func FreeAddr(network string) (string, error) {
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		defer pc.Close()
		return pc.LocalAddr().String(), nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// ReadPID returns the PID in a PID file, or 0 if there is none (yet).
func ReadPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// Running reports whether process pid runs; a zombie does not. It reads
// /proc, so it knows only Linux processes.
func Running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}
