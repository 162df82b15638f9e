package exchange

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
)

type counters struct {
	connections atomic.Uint64
	calls       atomic.Uint64
	frames      atomic.Uint64
	slow        atomic.Uint64
	tooLong     atomic.Uint64
}

// count counts an event a phone handled.
func (s *Switch) count(ev any) {
	switch ev.(type) {
	case phone.Answered:
		s.counters.calls.Add(1)
	case phone.PeerAudio:
		s.counters.frames.Add(1)
	}
}

// WriteMetrics writes the switch's metrics in Prometheus' text format.
func (s *Switch) WriteMetrics(w io.Writer) error {
	st := s.Status()
	type metric struct {
		name, kind, help string
		value            uint64
	}
	ms := []metric{
		{"phoneswitch_phones", "gauge", "Phones registered.", uint64(st.Phones)},
		{"phoneswitch_connections", "gauge", "Open connections.", uint64(st.Conns)},
		{"phoneswitch_connections_total", "counter", "Connections accepted.", s.counters.connections.Load()},
		{"phoneswitch_calls_total", "counter", "Calls connected.", s.counters.calls.Load()},
		{"phoneswitch_frames_total", "counter", "Audio frames delivered.", s.counters.frames.Load()},
		{"phoneswitch_slow_closed_total", "counter", "Connections closed for not reading.", s.counters.slow.Load()},
		{"phoneswitch_lines_too_long_total", "counter", "Lines over the length limit.", s.counters.tooLong.Load()},
	}
	for _, m := range ms {
		if _, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", m.name, m.help, m.name, m.kind, m.name, m.value); err != nil {
			return fmt.Errorf("exchange: metrics: %w", err)
		}
	}
	_, err := fmt.Fprintf(w, "# HELP phoneswitch_version_info The version new phones start on.\n# TYPE phoneswitch_version_info gauge\nphoneswitch_version_info{version=%q} 1\n", st.Version)
	if err != nil {
		return fmt.Errorf("exchange: metrics: %w", err)
	}
	return nil
}
