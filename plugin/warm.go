package plugin

import (
	"bytes"
	"sync"

	"github.com/hotline-go/hotline/fsm"
)

// warmCache keeps, in the plugin, the instance that the last event of each
// machine left, with the state and the data bytes that the plugin sent
// back for it. The next event of the machine carries the state and data
// the host kept; when they are exactly those bytes, the plugin runs the
// kept instance instead of decoding the data again (fsm's Load: msgpack by
// reflection, the largest part of a plugin's work for an event).
//
// It is a cache, never a source of truth. An entry is used only when the
// host's bytes equal the bytes the entry's instance encoded to, so the
// instance is exactly what a Load of those bytes would give back, as far
// as the code can tell (it is what an in-process machine keeps between
// events). Whatever happened on the host in between (a call abandoned by
// its caller, a change of code, a restore after a handoff, an event
// delivered again to this process) shows as other bytes, and the data is
// decoded. A new process starts empty. An entry is taken out while its
// instance runs and put back only after a successful event: an error or a
// panic in the code leaves no entry, since the instance may have been
// changed half-way.
//
// It is safe for concurrent use; pluginrpc runs the calls of one key one
// at a time, so an entry has one user at a time anyway.
type warmCache struct {
	mu       sync.Mutex
	entries  map[string]warmEntry
	max      int // entries
	maxBytes int // of data, over all entries
	bytes    int
}

// warmEntry is a machine's instance as its last event left it.
type warmEntry struct {
	code  fsm.Code
	in    fsm.Instance
	state string
	data  []byte // what in encoded to, as sent to the host
}

// The bounds of the entries kept: a plugin does not learn when a machine
// stops, so entries of stopped machines go only by these. A machine whose
// data is over a sixteenth of warmMaxBytes is not kept.
const (
	warmMax      = 4096
	warmMaxBytes = 16 << 20
)

func newWarmCache(max, maxBytes int) *warmCache {
	return &warmCache{entries: make(map[string]warmEntry), max: max, maxBytes: maxBytes}
}

// take returns key's instance if it was left by code with exactly state
// and data, and removes it: the caller owns it until it puts it back.
func (w *warmCache) take(key string, code fsm.Code, state string, data []byte) fsm.Instance {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.entries[key]
	if !ok {
		return nil
	}
	w.remove(key, e)
	if e.code != code || e.state != state || !bytes.Equal(e.data, data) {
		return nil
	}
	return e.in
}

// put keeps in, of code, as key's instance, with the state and data it
// returned to the host. Over a bound, arbitrary other entries are dropped.
func (w *warmCache) put(key string, code fsm.Code, in fsm.Instance, state string, data []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.entries[key]; ok {
		w.remove(key, e)
	}
	if len(data) > w.maxBytes/16 {
		return
	}
	for k, e := range w.entries {
		if len(w.entries) < w.max && w.bytes+len(data) <= w.maxBytes {
			break
		}
		w.remove(k, e)
	}
	w.entries[key] = warmEntry{code: code, in: in, state: state, data: data}
	w.bytes += len(data)
}

// remove deletes key's entry e. w.mu is held.
func (w *warmCache) remove(key string, e warmEntry) {
	delete(w.entries, key)
	w.bytes -= len(e.data)
}

// len returns the number of entries.
func (w *warmCache) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.entries)
}
