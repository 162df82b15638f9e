package protocol_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hotline-go/hotline/examples/phoneswitch/protocol"
)

// FuzzParseCommand: any line parses to a command whose String parses back to
// it, or fails with one of the two documented errors.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"REGISTER 1234", "KEY #", "AUDIO 1 x", "OFFHOOK", "ONHOOK", "STATUS", "AUDIO 1 a b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := protocol.ParseCommand(line)
		if err != nil {
			if !errors.Is(err, protocol.ErrUnknownCommand) && !errors.Is(err, protocol.ErrBadArgs) {
				t.Fatalf("%q: undocumented error %v", line, err)
			}
			return
		}
		s := c.String()
		if strings.ContainsAny(s, "\n") {
			t.Fatalf("%q: formatted command holds a newline: %q", line, s)
		}
		again, err := protocol.ParseCommand(s)
		if err != nil || again != c {
			t.Fatalf("%q: %#v formats as %q, which parses as %#v, %v", line, c, s, again, err)
		}
	})
}

// FuzzParseReply: the same for replies (what a client reads from the switch).
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"OK REGISTERED 555", "STATUS 555 in_progress v2 peer=556 since=1", "AUDIO 9 z", "ERR bad-args", "BUSY busy"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := protocol.ParseReply(line)
		if err != nil {
			if !errors.Is(err, protocol.ErrUnknownCommand) && !errors.Is(err, protocol.ErrBadArgs) {
				t.Fatalf("%q: undocumented error %v", line, err)
			}
			return
		}
		if _, err := protocol.ParseReply(r.String()); err != nil {
			t.Fatalf("%q: %#v formats as %q, which does not parse: %v", line, r, r.String(), err)
		}
	})
}

// FuzzReader: any input is read to its end without a line over MaxLine.
func FuzzReader(f *testing.F) {
	f.Add("STATUS\n" + strings.Repeat("x", 2000) + "\nKEY 1")
	f.Fuzz(func(t *testing.T, in string) {
		r := protocol.NewReader(strings.NewReader(in))
		for range len(in) + 2 {
			line, err := r.ReadLine()
			if len(line) >= protocol.MaxLine {
				t.Fatalf("line of %d bytes", len(line))
			}
			if err != nil && !errors.Is(err, protocol.ErrLineTooLong) {
				return
			}
		}
		t.Fatal("reader did not reach the end")
	})
}
