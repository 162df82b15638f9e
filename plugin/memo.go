package plugin

import (
	"bytes"
	"sync"

	"github.com/hotline-go/hotline/fsm"
)

// memo keeps, per machine, the instance a plugin's last call left and the
// bytes it returned, so that the machine's next call, which carries those
// bytes back as its data, skips decoding them (fsm.Code.Load): the most
// expensive part of a plugin's work per event. The host still sends the
// data with every call and stays its only owner: an instance is reused
// only when the call's version, state and data are byte for byte what
// the instance encoded, so a redelivery, a restart of the plugin, a host
// that moved the machine meanwhile or any other data simply miss. A call
// that fails (an error or a panic) leaves no instance behind, since its
// handler may have changed the data in place.
//
// An entry is taken out while its call runs, so two calls of one machine
// never share an instance. The memo is bounded by memoBudget, counted as
// memoCost per entry, least recently used out first: a machine that has
// ended leaves its entry until the budget pushes it out.
type memo struct {
	mu     sync.Mutex
	byKey  map[string]*memoEntry
	lru    memoEntry // sentinel: lru.next is the most recently used
	cost   int
	budget int
}

type memoEntry struct {
	key, version, state string
	data                []byte // what in encoded, owned by the entry
	in                  fsm.Instance
	flagged             bool // in was given flags on (see giveFlags)
	prev, next          *memoEntry
}

// memoBudget bounds a plugin process's memo: about this many bytes of
// data, decoded and encoded, kept for machines between their calls.
const memoBudget = 32 << 20

// memoCost is what an entry is counted for: its encoded data, about as
// much again decoded, and the bookkeeping.
func memoCost(e *memoEntry) int { return 2*len(e.data) + 256 }

func newMemo(budget int) *memo {
	m := &memo{byKey: make(map[string]*memoEntry), budget: budget}
	m.lru.next, m.lru.prev = &m.lru, &m.lru
	return m
}

// take returns the instance key's last call left if it encoded exactly
// version, state and data, and whether it was given flags on; it removes
// key's entry in any case.
func (m *memo) take(key, version, state string, data []byte) (in fsm.Instance, flagged bool) {
	m.mu.Lock()
	e := m.byKey[key]
	if e != nil {
		m.unlink(e)
	}
	m.mu.Unlock()
	if e == nil || e.version != version || e.state != state || !bytes.Equal(e.data, data) {
		return nil, false
	}
	return e.in, e.flagged
}

// put keeps in, which has just encoded data in state, as key's entry.
// data must not be changed afterwards by anyone.
func (m *memo) put(key, version, state string, data []byte, in fsm.Instance, flagged bool) {
	e := &memoEntry{key: key, version: version, state: state, data: data, in: in, flagged: flagged}
	if memoCost(e) > m.budget {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.byKey[key]; old != nil {
		m.unlink(old)
	}
	m.byKey[key] = e
	e.prev, e.next = &m.lru, m.lru.next
	e.prev.next, e.next.prev = e, e
	m.cost += memoCost(e)
	for m.cost > m.budget {
		m.unlink(m.lru.prev)
	}
}

// unlink removes e from the memo. m.mu is held.
func (m *memo) unlink(e *memoEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	delete(m.byKey, e.key)
	m.cost -= memoCost(e)
}

// len returns the number of entries.
func (m *memo) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byKey)
}
