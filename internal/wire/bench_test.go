package wire_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/hotline-go/hotline/internal/wire"
)

// benchRequest is about the size of an event's request: 290 bytes of msgpack.
var benchRequest = wire.Request{ID: 123456, Key: "machine-0001", Method: "event",
	Timeout: 5 * time.Second, Body: bytes.Repeat([]byte{0xa5}, 250)}

// libRequest is the same message for the msgpack library's reflection path.
type libRequest struct {
	_msgpack struct{} `msgpack:",as_array"`
	Type     uint8
	ID       uint64
	Key      string
	Method   string
	Timeout  time.Duration
	Body     []byte
}

func BenchmarkRequestAppend(b *testing.B) {
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = benchRequest.Append(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkRequestDecode(b *testing.B) {
	buf := benchRequest.Append(nil)
	var r wire.Request
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkRequestLibraryMarshal(b *testing.B) {
	m := libRequest{Type: 4, ID: benchRequest.ID, Key: benchRequest.Key, Method: benchRequest.Method,
		Timeout: benchRequest.Timeout, Body: benchRequest.Body}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := enc.Encode(&m); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(buf.Len()))
}

func BenchmarkRequestLibraryUnmarshal(b *testing.B) {
	buf := benchRequest.Append(nil)
	var m libRequest
	b.ReportAllocs()
	for b.Loop() {
		if err := msgpack.Unmarshal(buf, &m); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}
