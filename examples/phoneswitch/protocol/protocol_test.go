package protocol_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/hotline-go/hotline/examples/phoneswitch/protocol"
	"github.com/stretchr/testify/require"
)

func TestParseCommand(t *testing.T) {
	long := strings.Repeat("x", protocol.MaxPayload)
	tests := []struct {
		line string
		want protocol.Command
		err  error
	}{
		{"REGISTER 1234", protocol.Register{Number: "1234"}, nil},
		{"REGISTER 12", protocol.Register{Number: "12"}, nil}, // the switch checks the length
		{"REGISTER 1234\r", protocol.Register{Number: "1234"}, nil},
		{"REGISTER 1234\n", protocol.Register{Number: "1234"}, nil},
		{"REGISTER", nil, protocol.ErrBadArgs},
		{"REGISTER 1 2", nil, protocol.ErrBadArgs},
		{"OFFHOOK", protocol.OffHook{}, nil},
		{"OFFHOOK now", nil, protocol.ErrBadArgs},
		{"ONHOOK", protocol.OnHook{}, nil},
		{"STATUS", protocol.Status{}, nil},
		{"KEY 7", protocol.Key{Key: "7"}, nil},
		{"KEY #", protocol.Key{Key: "#"}, nil},
		{"KEY *", nil, protocol.ErrBadArgs},
		{"KEY 12", nil, protocol.ErrBadArgs},
		{"KEY", nil, protocol.ErrBadArgs},
		{"AUDIO 0 hello", protocol.Audio{Seq: 0, Payload: "hello"}, nil},
		{"AUDIO 18446744073709551615 " + long, protocol.Audio{Seq: 1<<64 - 1, Payload: long}, nil},
		{"AUDIO 18446744073709551616 x", nil, protocol.ErrBadArgs},
		{"AUDIO -1 x", nil, protocol.ErrBadArgs},
		{"AUDIO 1 " + long + "x", nil, protocol.ErrBadArgs},
		{"AUDIO 1 a b", nil, protocol.ErrBadArgs},
		{"AUDIO 1 caf\xc3\xa9", nil, protocol.ErrBadArgs},
		{"AUDIO 1", nil, protocol.ErrBadArgs},
		{"AUDIO  1 x", nil, protocol.ErrBadArgs},
		{"", nil, protocol.ErrUnknownCommand},
		{"offhook", nil, protocol.ErrUnknownCommand},
		{"DIAL 123", nil, protocol.ErrUnknownCommand},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := protocol.ParseCommand(tt.line)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			again, err := protocol.ParseCommand(got.String())
			require.NoError(t, err)
			require.Equal(t, got, again)
		})
	}
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		line string
		want protocol.Reply
		err  error
	}{
		{"OK REGISTERED 555", protocol.Registered{Number: "555"}, nil},
		{"OK", nil, protocol.ErrBadArgs},
		{"DIALTONE", protocol.DialTone{}, nil},
		{"RINGBACK 555", protocol.Ringback{Number: "555"}, nil},
		{"RING 556", protocol.Ring{Number: "556"}, nil},
		{"CONNECTED 556", protocol.Connected{Number: "556"}, nil},
		{"CONNECTED x", nil, protocol.ErrBadArgs},
		{"BUSY unknown", protocol.Busy{Reason: "unknown"}, nil},
		{"AUDIO 3 abc", protocol.Audio{Seq: 3, Payload: "abc"}, nil},
		{"ONHOOK", protocol.OnHook{}, nil},
		{"HANGUP", protocol.Hangup{}, nil},
		{"ERR no-call", protocol.Error{Code: "no-call"}, nil},
		{"STATUS 555 off v1", protocol.StatusLine{Number: "555", State: "off", Version: "v1"}, nil},
		{
			"STATUS 555 in_progress v2 peer=556 since=1700000000000",
			protocol.StatusLine{Number: "555", State: "in_progress", Version: "v2", Fields: []protocol.Field{
				{Key: "peer", Value: "556"}, {Key: "since", Value: "1700000000000"},
			}},
			nil,
		},
		{"STATUS 555 off v1 peer", nil, protocol.ErrBadArgs},
		{"STATUS 555", nil, protocol.ErrBadArgs},
		{"HELLO", nil, protocol.ErrUnknownCommand},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := protocol.ParseReply(tt.line)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.line, got.String())
		})
	}
}

func TestStatusLineGet(t *testing.T) {
	s := protocol.StatusLine{Fields: []protocol.Field{{Key: "peer", Value: "556"}}}
	v, ok := s.Get("peer")
	require.True(t, ok)
	require.Equal(t, "556", v)
	_, ok = s.Get("since")
	require.False(t, ok)
}

func TestValidNumber(t *testing.T) {
	for s, want := range map[string]bool{
		"123": true, "12345678": true, "12": false, "123456789": false, "12a": false, "": false,
	} {
		require.Equal(t, want, protocol.ValidNumber(s), s)
	}
}

func TestReader(t *testing.T) {
	tooLong := strings.Repeat("A", 3*protocol.MaxLine)
	exact := strings.Repeat("B", protocol.MaxLine-1)
	in := "STATUS\r\n" + tooLong + "\n" + exact + "\nOFFHOOK\n" + tooLong + "\nlast"
	r := protocol.NewReader(strings.NewReader(in))
	want := []struct {
		line string
		err  error
	}{
		{"STATUS", nil},
		{"", protocol.ErrLineTooLong},
		{exact, nil},
		{"OFFHOOK", nil},
		{"", protocol.ErrLineTooLong},
		{"last", nil},
		{"", io.EOF},
	}
	for i, w := range want {
		line, err := r.ReadLine()
		if w.err != nil {
			require.True(t, errors.Is(err, w.err), "line %d: %v", i, err)
			continue
		}
		require.NoError(t, err, "line %d", i)
		require.Equal(t, w.line, line, "line %d", i)
	}
}

// timeoutReader returns its chunks one per Read, and a timeout between them.
type timeoutReader struct{ chunks []string }

var errTimeout = errors.New("timeout")

func (r *timeoutReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	c := r.chunks[0]
	if c == "" {
		r.chunks = r.chunks[1:]
		return 0, errTimeout
	}
	n := copy(p, c)
	r.chunks[0] = c[n:]
	if n == len(c) {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

// A read error in the middle of a line loses nothing, and Unread hands
// what was read to the next Reader.
func TestReaderInterrupted(t *testing.T) {
	r := protocol.NewReader(&timeoutReader{chunks: []string{"STAT", "", "US\nKEY", "", "KEY 1\nOFF"}})
	_, err := r.ReadLine()
	require.ErrorIs(t, err, errTimeout)
	line, err := r.ReadLine()
	require.NoError(t, err)
	require.Equal(t, "STATUS", line)
	_, err = r.ReadLine()
	require.ErrorIs(t, err, errTimeout)
	require.Equal(t, "KEY", string(r.Unread()))

	r2 := protocol.NewReaderAfter([]byte("KEY 2\nKEY"), strings.NewReader(" 3\n"))
	line, err = r2.ReadLine()
	require.NoError(t, err)
	require.Equal(t, "KEY 2", line)
	require.Equal(t, "KEY", string(r2.Unread()[:3]))
}
