//go:build !linux

package upgrade

import "net"

func peerPID(*net.UnixConn) (int, error) { return 0, errNoPeerCred }

func isChild(int) (bool, error) { return false, errNoPeerCred }
