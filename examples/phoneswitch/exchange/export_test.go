package exchange

import (
	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/upgrade"
)

// HandoffConns returns every connection of s as [WithHandoff] adopts it
// (unregistered), to call its Pause and Resume as an upgrade.Handoff does.
func HandoffConns(s *Switch) ([]upgrade.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]upgrade.Conn, 0, len(s.conns))
	for c := range s.conns {
		hc, err := c.handoffConn("")
		if err != nil {
			return nil, err
		}
		out = append(out, hc)
	}
	return out, nil
}

// Supervisor returns the phones supervisor of s.
func Supervisor(s *Switch) actor.Ref { return s.sup }

// ConnCount returns how many connections s is serving: a connection whose
// reader has seen its end is not counted.
func ConnCount(s *Switch) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// PhoneRef returns the machine of a registered number.
func PhoneRef(s *Switch, number string) (actor.Ref, bool) {
	l, ok := s.lookup(number)
	if !ok {
		return actor.Ref{}, false
	}
	return l.ref, true
}
