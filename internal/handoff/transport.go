package handoff

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// filesPerMsg is how many descriptors one SCM_RIGHTS message carries
// (Linux takes at most 253).
const filesPerMsg = 200

// WriteState writes a State frame: u32 body length, u32 file count, the
// body, then the descriptors fds in SCM_RIGHTS messages of up to 200, each
// on a one-byte message 'F'. The descriptors stay open and must stay open
// until WriteState returns: the caller closes them.
func WriteState(c *net.UnixConn, body []byte, fds []int) error {
	files := fds
	if len(body) > MaxBody || len(files) > MaxFiles {
		return fmt.Errorf("handoff: state of %d bytes and %d files is too large", len(body), len(files))
	}
	hdr := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint32(hdr, uint32(len(body)))
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(files)))
	if _, err := c.Write(append(hdr, body...)); err != nil {
		return fmt.Errorf("handoff: write state: %w", err)
	}
	for i := 0; i < len(files); i += filesPerMsg {
		if _, _, err := c.WriteMsgUnix([]byte{'F'}, syscall.UnixRights(files[i:min(i+filesPerMsg, len(files))]...), nil); err != nil {
			return fmt.Errorf("handoff: write files: %w", err)
		}
	}
	return nil
}

// ReadState reads a State frame written by [WriteState] and returns its
// body and files (the caller owns them: on an error, those already received
// are closed).
func ReadState(c *net.UnixConn) (body []byte, files []*os.File, err error) {
	defer func() {
		if err != nil {
			for _, f := range files {
				_ = f.Close()
			}
			files = nil
		}
	}()
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, nil, fmt.Errorf("handoff: read state: %w", err)
	}
	n, nf := binary.BigEndian.Uint32(hdr[:]), binary.BigEndian.Uint32(hdr[4:])
	if n > MaxBody || nf > MaxFiles {
		return nil, nil, fmt.Errorf("%w: state of %d bytes and %d files", ErrFormat, n, nf)
	}
	body = make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		return nil, nil, fmt.Errorf("handoff: read state: %w", err)
	}
	oob := make([]byte, syscall.CmsgSpace(4*filesPerMsg))
	for uint32(len(files)) < nf {
		var b [1]byte
		k, oobn, _, _, err := c.ReadMsgUnix(b[:], oob)
		if err != nil {
			return nil, files, fmt.Errorf("handoff: read files: %w", err)
		}
		if k != 1 || b[0] != 'F' {
			return nil, files, fmt.Errorf("%w: files message %q", ErrFormat, b[:k])
		}
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, files, fmt.Errorf("%w: files: %w", ErrFormat, err)
		}
		for _, m := range msgs {
			fds, err := syscall.ParseUnixRights(&m)
			if err != nil {
				return nil, files, fmt.Errorf("%w: files: %w", ErrFormat, err)
			}
			for _, fd := range fds {
				syscall.CloseOnExec(fd)
				files = append(files, os.NewFile(uintptr(fd), "handoff"))
			}
		}
	}
	if uint32(len(files)) != nf {
		return nil, files, fmt.Errorf("%w: %d files, %d announced", ErrFormat, len(files), nf)
	}
	return body, files, nil
}
