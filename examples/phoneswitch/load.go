package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hotline-go/hotline/examples/phoneswitch/protocol"
)

type loadConfig struct {
	addr          string
	phones        int
	duration      time.Duration
	callLength    time.Duration
	frameInterval time.Duration
	base          int
	// wait bounds the wait for one reply, and for a call's last frames
	// (default 5s).
	wait time.Duration
}

func (c loadConfig) replyWait() time.Duration {
	if c.wait > 0 {
		return c.wait
	}
	return 5 * time.Second
}

func load(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg loadConfig
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:5060", "`ADDR` of the switch")
	fs.IntVar(&cfg.phones, "phones", 10, "`N` simulated phones, calling in pairs (even)")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long to place new calls")
	fs.DurationVar(&cfg.callLength, "call", 2*time.Second, "how long each call streams audio")
	fs.DurationVar(&cfg.frameInterval, "frame", 20*time.Millisecond, "interval between audio frames")
	fs.IntVar(&cfg.base, "base", 10000, "first phone number")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("load: unexpected argument %q", fs.Arg(0))
	}
	rep, err := runLoad(ctx, cfg)
	if err != nil {
		return err
	}
	if err := rep.print(stdout); err != nil {
		return err
	}
	return rep.verdict()
}

// loadReport is what the load generator saw.
type loadReport struct {
	mu         sync.Mutex
	Completed  int
	Failed     int
	Sent       uint64
	Received   uint64
	Lost       uint64
	OutOfOrder uint64
	Duplicated uint64
	Latencies  []time.Duration
	Versions   map[string]int // version in STATUS -> times seen
	Gaps       []gap          // pauses in a stream longer than 3 frame intervals
	Errors     []string       // the first few failures
}

// gap is a pause in a stream of frames, ending at End.
type gap struct {
	End time.Time
	Len time.Duration
}

func (r *loadReport) verdict() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.Lost > 0 || r.OutOfOrder > 0 || r.Duplicated > 0:
		return fmt.Errorf("load: %d frames lost, %d out of order, %d duplicated", r.Lost, r.OutOfOrder, r.Duplicated)
	case r.Failed > 0:
		return fmt.Errorf("load: %d calls failed: %s", r.Failed, strings.Join(r.Errors, "; "))
	case r.Completed == 0:
		return errors.New("load: no call completed")
	}
	return nil
}

func (r *loadReport) percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return r.Latencies[min(len(r.Latencies)-1, int(p*float64(len(r.Latencies))))]
}

func (r *loadReport) print(w io.Writer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.Sort(r.Latencies)
	versions := make([]string, 0, len(r.Versions))
	for v, n := range r.Versions {
		versions = append(versions, fmt.Sprintf("%s (%d)", v, n))
	}
	slices.Sort(versions)
	_, err := fmt.Fprintf(w, "calls completed:     %d\ncalls failed:        %d\nframes sent:         %d\nframes lost:         %d\nframes out of order: %d\nframes duplicated:   %d\nlatency:             p50 %s  p90 %s  p99 %s  max %s\nversions seen:       %s\n",
		r.Completed, r.Failed, r.Sent, r.Lost, r.OutOfOrder, r.Duplicated,
		r.percentile(0.50), r.percentile(0.90), r.percentile(0.99), r.percentile(1),
		strings.Join(versions, ", "))
	for _, e := range r.Errors {
		if _, err := fmt.Fprintf(w, "failure:             %s\n", e); err != nil {
			return err
		}
	}
	return err
}

// runLoad runs cfg.phones/2 pairs of phones, each pair calling again and
// again until cfg.duration has passed (a call in progress then finishes).
func runLoad(ctx context.Context, cfg loadConfig) (*loadReport, error) {
	if cfg.phones < 2 || cfg.phones%2 != 0 {
		return nil, fmt.Errorf("load: --phones %d: want an even number, at least 2", cfg.phones)
	}
	if cfg.base+cfg.phones > 99999999 || cfg.base < 100 {
		return nil, fmt.Errorf("load: numbers %d to %d are not 3 to 8 digits", cfg.base, cfg.base+cfg.phones-1)
	}
	rep := &loadReport{Versions: map[string]int{}}
	until := time.Now().Add(cfg.duration)
	var wg sync.WaitGroup
	for i := 0; i < cfg.phones; i += 2 {
		a, b := strconv.Itoa(cfg.base+i), strconv.Itoa(cfg.base+i+1)
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(until) {
				if err := oneCall(ctx, cfg, rep, a, b); err != nil {
					rep.mu.Lock()
					rep.Failed++
					if len(rep.Errors) < 5 {
						rep.Errors = append(rep.Errors, fmt.Sprintf("%s -> %s: %v", a, b, err))
					}
					rep.mu.Unlock()
					select {
					case <-ctx.Done():
					case <-time.After(100 * time.Millisecond):
					}
					continue
				}
				rep.mu.Lock()
				rep.Completed++
				rep.mu.Unlock()
			}
		})
	}
	wg.Wait()
	return rep, nil
}

// oneCall connects a and b, streams audio both ways, and hangs up.
func oneCall(ctx context.Context, cfg loadConfig, rep *loadReport, a, b string) (err error) {
	pa, err := connectPhone(ctx, cfg, a)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, pa.close()) }()
	pb, err := connectPhone(ctx, cfg, b)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, pb.close()) }()

	if err := pa.send("OFFHOOK"); err != nil {
		return err
	}
	if err := pa.expect("DIALTONE"); err != nil {
		return err
	}
	for _, k := range b {
		if err := pa.send("KEY " + string(k)); err != nil {
			return err
		}
	}
	steps := []struct {
		p    *loadPhone
		send string
		want []*loadPhone
		line []string
	}{
		{pa, "KEY #", []*loadPhone{pa, pb}, []string{"RINGBACK " + b, "RING " + a}},
		{pb, "OFFHOOK", []*loadPhone{pb, pa}, []string{"CONNECTED " + a, "CONNECTED " + b}},
	}
	for _, s := range steps {
		if err := s.p.send(s.send); err != nil {
			return err
		}
		for i, p := range s.want {
			if err := p.expect(s.line[i]); err != nil {
				return err
			}
		}
	}
	if err := pa.status(rep); err != nil {
		return err
	}

	// Stream both ways, then wait for every frame to arrive.
	var sent [2]uint64
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, p := range []*loadPhone{pa, pb} {
		wg.Go(func() { sent[i], errs[i] = p.stream(ctx, cfg) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	deadline := time.Now().Add(cfg.replyWait())
	for (pb.recv() < sent[0] || pa.recv() < sent[1]) && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if err := pa.status(rep); err != nil {
		return err
	}
	rep.mu.Lock()
	for i, p := range []*loadPhone{pb, pa} {
		p.mu.Lock()
		rep.Sent += sent[i]
		rep.Received += p.received
		if sent[i] > p.distinct {
			rep.Lost += sent[i] - p.distinct
		}
		rep.OutOfOrder += p.ooo
		rep.Duplicated += p.dup
		rep.Latencies = append(rep.Latencies, p.lat...)
		rep.Gaps = append(rep.Gaps, p.gaps...)
		p.mu.Unlock()
	}
	rep.mu.Unlock()

	if err := pa.send("ONHOOK"); err != nil {
		return err
	}
	for _, s := range []struct {
		p    *loadPhone
		want string
	}{{pa, "ONHOOK"}, {pb, "HANGUP"}} {
		if err := s.p.expect(s.want); err != nil {
			return err
		}
	}
	if err := pb.send("ONHOOK"); err != nil {
		return err
	}
	return pb.expect("ONHOOK")
}

// loadPhone is one simulated phone: a connection, and a reader goroutine
// that checks AUDIO frames and passes every other line on.
type loadPhone struct {
	number string
	nc     net.Conn
	ctrl   chan ctrlLine
	done   chan struct{}
	gapMin time.Duration
	wait   time.Duration

	mu       sync.Mutex
	next     uint64
	received uint64 // frames received, duplicates included
	distinct uint64 // frames received, each sequence number once
	ooo      uint64 // frames with a sequence number lower than one received before, not seen yet
	dup      uint64 // frames received twice
	seen     []bool // by sequence number, in this call
	lat      []time.Duration
	last     time.Time
	gaps     []gap
	readErr  error
}

func connectPhone(ctx context.Context, cfg loadConfig, number string) (*loadPhone, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", cfg.addr)
	if err != nil {
		return nil, err
	}
	p := &loadPhone{number: number, nc: nc, ctrl: make(chan ctrlLine, 64), done: make(chan struct{}), gapMin: 3 * cfg.frameInterval, wait: cfg.replyWait()}
	go p.read()
	// The number may still be held by this phone's previous connection,
	// for the moment the switch takes to see it closed.
	for try := 0; ; try++ {
		if err := p.send("REGISTER " + number); err != nil {
			return nil, errors.Join(err, p.close())
		}
		line, err := p.line()
		if err != nil {
			return nil, errors.Join(err, p.close())
		}
		if line == (protocol.Registered{Number: number}).String() {
			return p, nil
		}
		if line != "ERR number-taken" || try == 50 {
			return nil, errors.Join(fmt.Errorf("phone %s: REGISTER: got %q", number, line), p.close())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *loadPhone) read() {
	defer close(p.done)
	br := bufio.NewReaderSize(p.nc, protocol.MaxLine)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			p.mu.Lock()
			p.readErr = err
			p.mu.Unlock()
			return
		}
		line = strings.TrimSuffix(line, "\n")
		r, err := protocol.ParseReply(line)
		a, ok := r.(protocol.Audio)
		if err != nil || !ok {
			p.mu.Lock()
			cl := ctrlLine{text: line, audio: p.received}
			p.mu.Unlock()
			select {
			case p.ctrl <- cl:
			default: // nobody listens: the call has failed already
			}
			continue
		}
		now := time.Now()
		p.mu.Lock()
		switch {
		case a.Seq < uint64(len(p.seen)) && p.seen[a.Seq]:
			p.dup++
		case a.Seq < p.next:
			p.ooo++
		}
		if a.Seq < 1<<20 { // a bound on the memory of a bad reply
			for uint64(len(p.seen)) <= a.Seq {
				p.seen = append(p.seen, false)
			}
			if !p.seen[a.Seq] {
				p.distinct++
			}
			p.seen[a.Seq] = true
		}
		p.next = max(p.next, a.Seq+1)
		p.received++
		if ns, err := strconv.ParseInt(a.Payload, 36, 64); err == nil {
			p.lat = append(p.lat, now.Sub(time.Unix(0, ns)))
		}
		if !p.last.IsZero() && now.Sub(p.last) > p.gapMin {
			p.gaps = append(p.gaps, gap{End: now, Len: now.Sub(p.last)})
		}
		p.last = now
		p.mu.Unlock()
	}
}

func (p *loadPhone) recv() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.received
}

func (p *loadPhone) send(line string) error {
	if err := p.nc.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	_, err := io.WriteString(p.nc, line+"\n")
	if err != nil {
		return fmt.Errorf("phone %s: send %s: %w", p.number, line, err)
	}
	return nil
}

// ctrlLine is a line other than AUDIO, and how many frames had arrived
// before it.
type ctrlLine struct {
	text  string
	audio uint64
}

func (p *loadPhone) line() (string, error) {
	l, err := p.lineAt()
	return l.text, err
}

func (p *loadPhone) lineAt() (ctrlLine, error) {
	wait := p.wait
	if wait == 0 {
		wait = 5 * time.Second
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case l := <-p.ctrl:
		return l, nil
	case <-p.done:
		select {
		case l := <-p.ctrl:
			return l, nil
		default:
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		return ctrlLine{}, fmt.Errorf("phone %s: connection closed: %w", p.number, p.readErr)
	case <-t.C:
		return ctrlLine{}, fmt.Errorf("phone %s: no reply within %s", p.number, wait)
	}
}

func (p *loadPhone) expect(want string) error {
	got, err := p.line()
	if err != nil {
		return fmt.Errorf("%w (want %q)", err, want)
	}
	if got != want {
		return fmt.Errorf("phone %s: got %q, want %q", p.number, got, want)
	}
	return nil
}

// status asks for the phone's status and counts the version it shows.
func (p *loadPhone) status(rep *loadReport) error {
	if err := p.send("STATUS"); err != nil {
		return err
	}
	line, err := p.line()
	if err != nil {
		return err
	}
	r, err := protocol.ParseReply(line)
	st, ok := r.(protocol.StatusLine)
	if err != nil || !ok {
		return fmt.Errorf("phone %s: STATUS: got %q", p.number, line)
	}
	rep.mu.Lock()
	rep.Versions[st.Version]++
	rep.mu.Unlock()
	return nil
}

// stream sends numbered frames for the call's length; it returns how many.
func (p *loadPhone) stream(ctx context.Context, cfg loadConfig) (uint64, error) {
	tick := time.NewTicker(cfg.frameInterval)
	defer tick.Stop()
	end := time.Now().Add(cfg.callLength)
	var seq uint64
	for time.Now().Before(end) {
		payload := strconv.FormatInt(time.Now().UnixNano(), 36)
		if err := p.send(protocol.Audio{Seq: seq, Payload: payload}.String()); err != nil {
			return seq, err
		}
		seq++
		select {
		case <-ctx.Done():
			return seq, ctx.Err()
		case <-tick.C:
		}
	}
	return seq, nil
}

func (p *loadPhone) close() error {
	err := p.nc.Close()
	<-p.done
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}
