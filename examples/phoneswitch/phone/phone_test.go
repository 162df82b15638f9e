package phone_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/fsm/fsmtest"
	"github.com/stretchr/testify/require"
)

// net is a switch in miniature: it routes the signals of each output and
// records the lines each phone got.
type net struct {
	t      *testing.T
	phones map[string]*fsmtest.Machine
	got    map[string][]string
}

func newNet(t *testing.T, code fsm.Code, numbers ...string) *net {
	n := &net{t: t, phones: map[string]*fsmtest.Machine{}, got: map[string][]string{}}
	for _, num := range numbers {
		n.phones[num] = fsmtest.Start(t, code, fsm.WithID(num))
	}
	return n
}

// send delivers ev to the phone num and routes what follows.
func (n *net) send(num string, ev any) {
	n.t.Helper()
	type hop struct {
		to string
		ev any
	}
	queue := []hop{{num, ev}}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		m, ok := n.phones[h.to]
		if !ok {
			if r, isRing := h.ev.(phone.Ring); isRing {
				queue = append(queue, hop{r.From, phone.Busy{From: h.to, Reason: "unknown"}})
			}
			continue
		}
		v, err := m.Call(h.ev)
		require.NoError(n.t, err)
		out := v.(phone.Output)
		n.got[h.to] = append(n.got[h.to], out.Lines...)
		for _, s := range out.Signals {
			e, err := s.Event(h.to)
			require.NoError(n.t, err)
			queue = append(queue, hop{out.To, e})
		}
	}
}

// take returns and forgets the lines num got.
func (n *net) take(num string) string {
	s := strings.Join(n.got[num], "|")
	n.got[num] = nil
	return s
}

func (n *net) dial(from string, number string) {
	n.send(from, phone.OffHook{At: 1})
	for _, k := range number {
		n.send(from, phone.Key{Key: string(k)})
	}
	n.send(from, phone.Key{Key: "#"})
}

func TestCall(t *testing.T) {
	for _, code := range []fsm.Code{phone.V1(), phone.V2()} {
		t.Run(code.Version(), func(t *testing.T) {
			v := code.Version()
			n := newNet(t, code, "100", "200", "300")
			n.dial("100", "200")
			require.Equal(t, "DIALTONE|RINGBACK 200", n.take("100"))
			require.Equal(t, "RING 100", n.take("200"))

			n.dial("300", "200")
			require.Equal(t, "DIALTONE|BUSY busy", n.take("300"))
			require.Equal(t, phone.Disconnecting, n.phones["300"].State())
			n.send("300", phone.OnHook{})
			n.dial("300", "999")
			require.Equal(t, "ONHOOK|DIALTONE|BUSY unknown", n.take("300"))
			n.send("300", phone.OnHook{})
			n.dial("300", "12")
			require.Equal(t, "ONHOOK|DIALTONE|BUSY unknown", n.take("300"))

			n.send("100", phone.SendAudio{Seq: 1, Payload: "early"})
			require.Equal(t, "ERR no-call", n.take("100"))
			n.send("200", phone.OffHook{At: 1700000000123})
			require.Equal(t, "CONNECTED 100", n.take("200"))
			require.Equal(t, "CONNECTED 200", n.take("100"))

			for i := range uint64(3) {
				n.send("100", phone.SendAudio{Seq: i, Payload: "a"})
				n.send("200", phone.SendAudio{Seq: i, Payload: "b"})
			}
			require.Equal(t, "AUDIO 0 a|AUDIO 1 a|AUDIO 2 a", n.take("200"))
			require.Equal(t, "AUDIO 0 b|AUDIO 1 b|AUDIO 2 b", n.take("100"))

			n.send("100", phone.Status{})
			want := "STATUS 100 in_progress " + v + " peer=200 dir=out"
			if v == "v2" {
				want += " since=1700000000123"
			}
			require.Equal(t, want+" calls=1 frames_in=3 frames_out=3", n.take("100"))

			n.send("100", phone.Key{Key: "1"})
			require.Equal(t, "ERR wrong-state", n.take("100"))
			n.send("200", phone.OnHook{})
			require.Equal(t, "ONHOOK", n.take("200"))
			require.Equal(t, "HANGUP", n.take("100"))
			require.Equal(t, phone.Disconnecting, n.phones["100"].State())
			n.send("100", phone.OnHook{})
			require.Equal(t, "ONHOOK", n.take("100"))
			n.send("100", phone.Status{})
			require.Equal(t, "STATUS 100 off "+v+" calls=1 frames_in=3 frames_out=3", n.take("100"))
		})
	}
}

func TestCallerHangsUpWhileRinging(t *testing.T) {
	n := newNet(t, phone.V1(), "100", "200")
	n.dial("100", "200")
	n.take("100")
	n.send("100", phone.OnHook{})
	require.Equal(t, "ONHOOK", n.take("100"))
	require.Equal(t, "RING 100|HANGUP", n.take("200"))
	n.send("200", phone.OffHook{At: 5})
	require.Equal(t, "ERR wrong-state", n.take("200"))
}

func TestTooManyDigits(t *testing.T) {
	n := newNet(t, phone.V2(), "100")
	n.dial("100", "123456789")
	require.Equal(t, "DIALTONE|ERR too-many-digits|BUSY unknown", n.take("100"))
}

func TestSignalEvent(t *testing.T) {
	_, err := phone.Signal{Kind: "nope"}.Event("100")
	require.Error(t, err)
	ev, err := phone.Signal{Kind: phone.SigAudio, Seq: 4, Payload: "x"}.Event("100")
	require.NoError(t, err)
	require.Equal(t, phone.PeerAudio{From: "100", Seq: 4, Payload: "x"}, ev)
}

// The hd-audio flag shows in STATUS (codec=hd) for the phones it is on
// for, in both versions, the moment it is set: no new version, no phone
// moved; a percentage picks phones by number, stably.
func TestFlagHDAudio(t *testing.T) {
	for _, code := range []fsm.Code{phone.V1(), phone.V2()} {
		t.Run(code.Version(), func(t *testing.T) {
			v := code.Version()
			fl := flags.New(flags.WithLogger(slog.New(slog.DiscardHandler)))
			status := func(m *fsmtest.Machine) string {
				t.Helper()
				out, err := m.Call(phone.Status{})
				require.NoError(t, err)
				return strings.Join(out.(phone.Output).Lines, "|")
			}
			ids := []string{"100", "101", "102", "103", "104", "105", "106", "107"}
			ms := make(map[string]*fsmtest.Machine, len(ids))
			for _, id := range ids {
				ms[id] = fsmtest.Start(t, code, fsm.WithID(id), fsm.WithFlags(fl))
			}
			plain := "STATUS 100 off " + v + " calls=0 frames_in=0 frames_out=0"
			require.Equal(t, plain, status(ms["100"]))
			_, err := fl.Set(phone.FlagHDAudio, flags.On, "test")
			require.NoError(t, err)
			require.Equal(t, plain+" codec=hd", status(ms["100"]))
			_, err = fl.Set(phone.FlagHDAudio, flags.Percent(50), "test")
			require.NoError(t, err)
			on := 0
			for _, id := range ids {
				got := status(ms[id])
				require.Equal(t, fl.Enabled(phone.FlagHDAudio, id), strings.HasSuffix(got, " codec=hd"), got)
				if strings.HasSuffix(got, " codec=hd") {
					on++
				}
			}
			require.True(t, on > 0 && on < len(ids), "50%% of %d phones: %d on", len(ids), on)
			_, err = fl.Set(phone.FlagHDAudio, flags.Off, "test")
			require.NoError(t, err)
			require.Equal(t, plain, status(ms["100"]))
		})
	}
}

func TestPeer(t *testing.T) {
	for _, code := range []fsm.Code{phone.V1(), phone.V2()} {
		t.Run(code.Version(), func(t *testing.T) {
			n := newNet(t, code, "100", "200")
			peerOf := func(num string) string {
				t.Helper()
				p, err := phone.Peer(n.phones[num].Info().Snapshot())
				require.NoError(t, err)
				return p
			}
			require.Equal(t, "", peerOf("100"))
			n.dial("100", "200")
			require.Equal(t, "200", peerOf("100"), "ringing")
			require.Equal(t, "100", peerOf("200"), "ringing")
			n.send("200", phone.OffHook{At: 1})
			require.Equal(t, "200", peerOf("100"), "connected")
			n.send("100", phone.OnHook{})
			require.Equal(t, "", peerOf("100"))
			require.Equal(t, "", peerOf("200"))
		})
	}
	for _, s := range []fsm.Snapshot{
		{Machine: "counter", Version: "v1"},
		{Machine: phone.Name, Version: "v3"},
		{Machine: phone.Name, Version: "v1", Data: []byte{0xc1}},
		{Machine: phone.Name, Version: "v2", Data: []byte{0x81}},
	} {
		_, err := phone.Peer(s)
		require.ErrorIs(t, err, phone.ErrBadData, "%+v", s)
	}
}
