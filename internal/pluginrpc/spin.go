package pluginrpc

import (
	"errors"
	"io"
	"net"
	"runtime"
	"syscall"
)

// spinReader reads a socket and, when nothing is there yet, tries again up
// to tries times, yielding the processor in between (runtime.Gosched),
// before the goroutine parks in the netpoller. An answer that arrives
// within those tries is read on a thread that never slept, so the plugin's
// write does not have to wake one. Deadlines and a concurrent Close act
// as on the net.Conn: the reads go through its syscall.RawConn.
//
// Whether it pays depends on the machine: it trades the host's CPU (a read
// system call and a yield per try) for the wake-up. See doc/plugins.md.
type spinReader struct {
	rc    syscall.RawConn
	tries int
}

// newSpinReader returns a reader of nc that spins tries times, or nc itself
// if tries is 0 or nc has no raw descriptor.
func newSpinReader(nc net.Conn, tries int) io.Reader {
	sc, ok := nc.(syscall.Conn)
	if tries <= 0 || !ok {
		return nc
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nc
	}
	return &spinReader{rc: rc, tries: tries}
}

func (s *spinReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var (
		n    int
		rerr error
		left = s.tries
	)
	err := s.rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), p)
			if errors.Is(rerr, syscall.EINTR) {
				continue
			}
			if !errors.Is(rerr, syscall.EAGAIN) {
				return true
			}
			if left <= 0 {
				return false // park until the socket is readable
			}
			left--
			runtime.Gosched()
		}
	})
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
