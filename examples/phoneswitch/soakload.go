package main

// The soak's load generator: pairs of phones that stay registered across
// many calls (and reconnect now and then), streaming numbered audio, with
// a model of every phone (state, peer, direction, counters, the connect
// time v2 shows) that each STATUS answer is checked against; and idle
// phones, registered from start to end, checked the same way.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hotline-go/hotline/examples/phoneswitch/protocol"
)

// soakLoadConfig is the soak load's shape.
type soakLoadConfig struct {
	loadConfig
	idle       int // phones registered from start to end, never calling
	checkEvery int // frames between STATUS checks in a call
	reconnect  int // a pair reconnects after this many calls
}

// soakStats is what the soak load saw.
type soakStats struct {
	mu         sync.Mutex
	Calls      int
	Failed     int
	Sent       uint64
	Lost       uint64
	Duplicated uint64
	OutOfOrder uint64
	Checked    int // STATUS answers checked against the model
	Corrupted  int // STATUS answers that disagreed with it
	Versions   map[string]int
	Errors     []string // the first few failures and disagreements
}

func (s *soakStats) fail(format string, a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.Errors) < 10 {
		s.Errors = append(s.Errors, time.Now().UTC().Format("15:04:05.000 ")+fmt.Sprintf(format, a...))
	}
}

// model is what the load generator knows of one phone.
type model struct {
	p         *loadPhone
	state     string
	peer, dir string
	calls     uint64
	framesOut uint64 // frames sent since it registered
	since     string // v2's since= of the call, once seen
}

// check compares a STATUS answer with the model; slack is how many frames
// may be in flight to the phone while its peer streams: the switch writes
// a machine's answer from the goroutine that called it, so the STATUS
// line (this phone's reader) and an AUDIO line (the peer's reader) may
// reach the line in the other order than the machine made them, by one
// frame either way. With no frame in flight (slack 0) it is exact.
func (m *model) check(st *soakStats, l ctrlLine, slack uint64) error {
	r, err := protocol.ParseReply(l.text)
	s, ok := r.(protocol.StatusLine)
	if err != nil || !ok {
		return fmt.Errorf("phone %s: STATUS: got %q", m.p.number, l.text)
	}
	st.mu.Lock()
	st.Checked++
	st.Versions[s.Version]++
	st.mu.Unlock()
	var bad []string
	want := func(key, val string) {
		got, _ := s.Get(key)
		if got != val {
			bad = append(bad, fmt.Sprintf("%s=%q, want %q", key, got, val))
		}
	}
	if s.Number != m.p.number {
		bad = append(bad, fmt.Sprintf("number %s", s.Number))
	}
	if s.State != m.state {
		bad = append(bad, fmt.Sprintf("state %s, want %s", s.State, m.state))
	}
	want("peer", m.peer)
	want("dir", m.dir)
	want("calls", strconv.FormatUint(m.calls, 10))
	want("frames_out", strconv.FormatUint(m.framesOut, 10))
	in, _ := s.Get("frames_in")
	n, err := strconv.ParseUint(in, 10, 64)
	if err != nil || n+slack < l.audio || n > l.audio+slack {
		bad = append(bad, fmt.Sprintf("frames_in=%q, want %d (±%d in flight)", in, l.audio, slack))
	}
	if since, ok := s.Get("since"); ok {
		switch {
		case m.peer == "":
			bad = append(bad, "since= without a call")
		case m.since == "":
			m.since = since
		case since != m.since:
			bad = append(bad, fmt.Sprintf("since=%s, was %s", since, m.since))
		}
	}
	if len(bad) > 0 {
		st.mu.Lock()
		st.Corrupted++
		st.mu.Unlock()
		return fmt.Errorf("phone %s: %q disagrees with the model: %v", m.p.number, l.text, bad)
	}
	return nil
}

// status asks the phone's STATUS and checks it.
func (m *model) status(st *soakStats, slack uint64) error {
	if err := m.p.send("STATUS"); err != nil {
		return err
	}
	l, err := m.p.lineAt()
	if err != nil {
		return err
	}
	return m.check(st, l, slack)
}

func (m *model) expect(want string) error { return m.p.expect(want) }

// runSoakLoad runs the soak's phones until ctx ends or until passes, then
// lets each pair finish its call, checks every phone a last time and
// hangs up. ready is closed once the idle phones are registered; they are
// the first cfg.idle numbers from cfg.base.
func runSoakLoad(ctx context.Context, cfg soakLoadConfig, until time.Time, ready chan<- struct{}) *soakStats {
	st := &soakStats{Versions: map[string]int{}}
	var idle []*model
	defer func() {
		for _, m := range idle {
			if err := m.status(st, 0); err != nil {
				st.fail("idle %v", err)
			}
			if err := m.p.close(); err != nil {
				st.fail("idle phone %s: close: %v", m.p.number, err)
			}
		}
	}()
	for i := range cfg.idle {
		p, err := connectPhone(ctx, cfg.loadConfig, strconv.Itoa(cfg.base+i))
		if err != nil {
			st.fail("idle phone: %v", err)
			st.Failed++
			close(ready)
			return st
		}
		idle = append(idle, &model{p: p, state: "off"})
	}
	close(ready)
	var wg sync.WaitGroup
	for i := 0; i < cfg.phones; i += 2 {
		a, b := strconv.Itoa(cfg.base+cfg.idle+i), strconv.Itoa(cfg.base+cfg.idle+i+1)
		wg.Go(func() { soakPair(ctx, cfg, st, a, b, until) })
	}
	// The idle phones are checked now and then while the pairs call.
	t := time.NewTicker(time.Second)
	defer t.Stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			return st
		case <-t.C:
			for _, m := range idle {
				if err := m.status(st, 0); err != nil {
					st.fail("idle %v", err)
				}
			}
		}
	}
}

// soakPair calls from a to b again and again, on connections kept across
// cfg.reconnect calls.
func soakPair(ctx context.Context, cfg soakLoadConfig, st *soakStats, a, b string, until time.Time) {
	var ma, mb *model
	hangUp := func() {
		for _, m := range []*model{ma, mb} {
			if m != nil {
				if err := m.p.close(); err != nil {
					st.fail("phone %s: close: %v", m.p.number, err)
				}
			}
		}
		ma, mb = nil, nil
	}
	defer hangUp()
	for n := 0; ctx.Err() == nil && time.Now().Before(until); n++ {
		if n%cfg.reconnect == 0 {
			hangUp()
		}
		if ma == nil {
			var err error
			if ma, mb, err = connectPair(ctx, cfg, a, b); err != nil {
				st.mu.Lock()
				st.Failed++
				st.mu.Unlock()
				st.fail("%s -> %s: %v", a, b, err)
				hangUp()
				continue
			}
		}
		if err := soakCall(ctx, cfg, st, ma, mb); err != nil {
			st.mu.Lock()
			st.Failed++
			st.mu.Unlock()
			st.fail("%s -> %s: %v", a, b, err)
			hangUp()
			continue
		}
		st.mu.Lock()
		st.Calls++
		st.mu.Unlock()
	}
	if ma != nil {
		for _, m := range []*model{ma, mb} {
			if err := m.status(st, 0); err != nil {
				st.fail("last check: %v", err)
			}
		}
	}
}

func connectPair(ctx context.Context, cfg soakLoadConfig, a, b string) (*model, *model, error) {
	pa, err := connectPhone(ctx, cfg.loadConfig, a)
	if err != nil {
		return nil, nil, err
	}
	pb, err := connectPhone(ctx, cfg.loadConfig, b)
	if err != nil {
		return nil, nil, errors.Join(err, pa.close())
	}
	return &model{p: pa, state: "off"}, &model{p: pb, state: "off"}, nil
}

// soakCall makes one call from ma to mb, checking both phones' STATUS
// before, during and after it.
func soakCall(ctx context.Context, cfg soakLoadConfig, st *soakStats, ma, mb *model) error {
	pa, pb := ma.p, mb.p
	for _, p := range []*loadPhone{pa, pb} {
		p.mu.Lock()
		p.next, p.distinct, p.seen, p.ooo, p.dup = 0, 0, p.seen[:0], 0, 0
		p.mu.Unlock()
	}
	if err := pa.send("OFFHOOK"); err != nil {
		return err
	}
	if err := ma.expect("DIALTONE"); err != nil {
		return err
	}
	for _, k := range pb.number + "#" {
		if err := pa.send("KEY " + string(k)); err != nil {
			return err
		}
	}
	if err := ma.expect("RINGBACK " + pb.number); err != nil {
		return err
	}
	if err := mb.expect("RING " + pa.number); err != nil {
		return err
	}
	if err := pb.send("OFFHOOK"); err != nil {
		return err
	}
	for _, s := range []struct {
		m    *model
		want string
		peer string
		dir  string
	}{{mb, "CONNECTED " + pa.number, pa.number, "in"}, {ma, "CONNECTED " + pb.number, pb.number, "out"}} {
		if err := s.m.expect(s.want); err != nil {
			return err
		}
		s.m.state, s.m.peer, s.m.dir, s.m.since = "in_progress", s.peer, s.dir, ""
		s.m.calls++
	}
	for _, m := range []*model{ma, mb} {
		if err := m.status(st, 0); err != nil {
			return err
		}
	}

	var sent [2]uint64
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, m := range []*model{ma, mb} {
		wg.Go(func() { sent[i], errs[i] = soakStream(ctx, cfg, st, m) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	deadline := time.Now().Add(cfg.replyWait())
	for time.Now().Before(deadline) {
		pb.mu.Lock()
		gotB := pb.distinct
		pb.mu.Unlock()
		pa.mu.Lock()
		gotA := pa.distinct
		pa.mu.Unlock()
		if gotB >= sent[0] && gotA >= sent[1] {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	for _, m := range []*model{ma, mb} {
		if err := m.status(st, 0); err != nil {
			return err
		}
	}
	st.mu.Lock()
	for i, p := range []*loadPhone{pb, pa} {
		p.mu.Lock()
		st.Sent += sent[i]
		if sent[i] > p.distinct {
			st.Lost += sent[i] - p.distinct
		}
		st.Duplicated += p.dup
		st.OutOfOrder += p.ooo
		p.mu.Unlock()
	}
	st.mu.Unlock()

	if err := pa.send("ONHOOK"); err != nil {
		return err
	}
	if err := ma.expect("ONHOOK"); err != nil {
		return err
	}
	if err := mb.expect("HANGUP"); err != nil {
		return err
	}
	ma.state, ma.peer, ma.dir, ma.since = "off", "", "", ""
	mb.state, mb.peer, mb.dir, mb.since = "disconnecting", "", "", ""
	if err := mb.status(st, 0); err != nil {
		return err
	}
	if err := pb.send("ONHOOK"); err != nil {
		return err
	}
	if err := mb.expect("ONHOOK"); err != nil {
		return err
	}
	mb.state = "off"
	return ma.status(st, 0)
}

// soakStream sends numbered frames for the call's length, and checks the
// phone's STATUS every cfg.checkEvery frames; it returns how many frames
// it sent.
func soakStream(ctx context.Context, cfg soakLoadConfig, st *soakStats, m *model) (uint64, error) {
	tick := time.NewTicker(cfg.frameInterval)
	defer tick.Stop()
	end := time.Now().Add(cfg.callLength)
	var seq uint64
	for time.Now().Before(end) {
		if err := m.p.send(protocol.Audio{Seq: seq, Payload: strconv.FormatUint(seq, 36)}.String()); err != nil {
			return seq, err
		}
		seq++
		m.framesOut++
		if seq%uint64(cfg.checkEvery) == 0 {
			// The peer's frames keep coming: one may be counted by this
			// phone's machine and not yet be read here, or read here
			// before the STATUS that does not count it yet (see check).
			if err := m.status(st, 1); err != nil {
				return seq, err
			}
		}
		select {
		case <-ctx.Done():
			return seq, ctx.Err()
		case <-tick.C:
		}
	}
	return seq, nil
}
