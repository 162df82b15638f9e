package phone_test

import (
	"context"
	"testing"

	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/fsm/fsmtest"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// A sample of v1's data in every state round-trips through v2.
func TestUpgradeRoundTrip(t *testing.T) {
	v1 := phone.V1()
	fsmtest.RoundTrip(t, v1, phone.V2(),
		fsmtest.Sample(t, v1, phone.Off, phone.DataV1{Number: "100"}),
		fsmtest.Sample(t, v1, phone.Off, phone.DataV1{Number: "100", Calls: 3, FramesIn: 7, FramesOut: 9}),
		fsmtest.Sample(t, v1, phone.Dialing, phone.DataV1{Number: "100", Dialled: "20"}),
		fsmtest.Sample(t, v1, phone.Connecting, phone.DataV1{Number: "100", Peer: "200", Outgoing: true}),
		fsmtest.Sample(t, v1, phone.Connecting, phone.DataV1{Number: "200", Peer: "100"}),
		fsmtest.Sample(t, v1, phone.InProgress, phone.DataV1{Number: "100", Peer: "200", Outgoing: true, ConnectedAt: 1700000000123, Calls: 1, FramesIn: 4, FramesOut: 5}),
		fsmtest.Sample(t, v1, phone.InProgress, phone.DataV1{Number: "200", Peer: "100", ConnectedAt: 1700000000123, Calls: 1}),
		fsmtest.Sample(t, v1, phone.Disconnecting, phone.DataV1{Number: "100", Calls: 1}),
	)
}

func TestUpgradeRejects(t *testing.T) {
	tests := []struct {
		name string
		v1   phone.DataV1
	}{
		{"connect time without a peer", phone.DataV1{Number: "100", ConnectedAt: 5}},
		{"direction without a peer", phone.DataV1{Number: "100", Outgoing: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := phone.FromV1(tt.v1)
			require.ErrorIs(t, err, phone.ErrBadData)
		})
	}
	_, err := phone.DataV2{Call: &phone.Call{Peer: "200", Direction: "sideways"}}.V1()
	require.ErrorIs(t, err, phone.ErrBadData)
}

// A call connected on v1 goes on on v2 with since= its true connect time,
// then back on v1, with every frame delivered.
func TestUpgradeMidCall(t *testing.T) {
	ctx := context.Background()
	n := newNet(t, phone.V1(), "100", "200")
	n.dial("100", "200")
	n.send("200", phone.OffHook{At: 1700000000123})
	n.take("100")
	n.take("200")
	n.send("100", phone.SendAudio{Seq: 1, Payload: "x"})

	for _, num := range []string{"100", "200"} {
		require.NoError(t, n.phones[num].ChangeCode(phone.V2()))
	}
	n.send("100", phone.SendAudio{Seq: 2, Payload: "x"})
	n.send("200", phone.Status{})
	require.Equal(t, "AUDIO 1 x|AUDIO 2 x|STATUS 200 in_progress v2 peer=100 dir=in since=1700000000123 calls=1 frames_in=2 frames_out=0", n.take("200"))

	for _, num := range []string{"100", "200"} {
		require.NoError(t, n.phones[num].ChangeCode(phone.V1(), fsm.AsDowngrade()))
	}
	n.send("100", phone.SendAudio{Seq: 3, Payload: "x"})
	n.send("200", phone.Status{})
	require.Equal(t, "AUDIO 3 x|STATUS 200 in_progress v1 peer=100 dir=in calls=1 frames_in=3 frames_out=0", n.take("200"))

	info, err := fsm.Inspect(ctx, n.phones["200"].Ref)
	require.NoError(t, err)
	var d phone.DataV1
	require.NoError(t, msgpack.Unmarshal(info.Data, &d))
	require.Equal(t, int64(1700000000123), d.ConnectedAt)
}
