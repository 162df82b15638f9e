// Command latencyplot draws the event latency of live machines over time
// across an all-at-once upgrade and a rolling one, into a PNG for
// doc/upgrades.md. It is its own module, so that the plotting library is
// no dependency of Hotline. Run it from this folder:
//
//	go run . -o ../upgrade-latency.png
package main

import (
	"context"
	"flag"
	"fmt"
	"image/color"
	"io"
	"log"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/fsm"
	"github.com/hotline-go/hotline/upgrade"
)

type (
	get  struct{}
	data struct {
		Name string
		Blob []byte
		Gen  int
	}
)

func (get) EventName() string { return "Get" }

// version makes version ver of the machine: its data is the same in
// every version but for Gen, which UPGRADE sets.
func version(ver string, gen int) *fsm.Machine[data] {
	m := fsm.Define("bench", ver, "on", data{})
	m.InitFunc(func(id string) (string, data) { return "on", data{Name: id, Blob: make([]byte, 150), Gen: gen} })
	fsm.On(m, "on", func(_ get, d data) fsm.Result[data] { return fsm.Keep(d, fsm.Reply(d.Gen)) })
	m.OnUpgrade(func(from, state string, raw msgpack.RawMessage) (string, data, error) {
		var d data
		err := msgpack.Unmarshal(raw, &d)
		d.Gen = gen
		return state, d, err
	})
	m.OnDowngrade(func(to, state string, d data) (string, any, error) { return state, d, nil })
	return m
}

type sample struct {
	at, took time.Duration
}

type span struct {
	from, to time.Duration
	label    string
}

func main() {
	out := flag.String("o", "upgrade-latency.png", "the PNG to write")
	n := flag.Int("machines", 10_000, "live machines")
	clients := flag.Int("clients", 4, "clients calling random machines")
	batch := flag.Int("batch", 256, "the rolling upgrade's batch")
	flag.Parse()
	if err := run(*out, *n, *clients, *batch); err != nil {
		log.Fatal(err)
	}
}

func run(out string, n, clients, batch int) error {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewSystem(actor.WithLogger(quiet))
	defer func() { _ = sys.Shutdown(ctx) }()
	h, err := upgrade.NewReleaseHandler(sys, upgrade.WithReleaseLogger(quiet))
	if err != nil {
		return err
	}
	defer func() { _ = h.Close(ctx) }()
	for i, v := range []string{"v1", "v2", "v3"} {
		if err := h.Register(version(v, i+1)); err != nil {
			return err
		}
	}
	refs := make([]actor.Ref, n)
	for i := range refs {
		if refs[i], err = h.Start(ctx, "bench", fsm.WithID(fmt.Sprintf("m%05d", i))); err != nil {
			return err
		}
	}

	t0 := time.Now()
	var stop atomic.Bool
	var mu sync.Mutex
	var samples []sample
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(c), 7))
			var mine []sample
			for !stop.Load() {
				s := time.Now()
				if _, err := fsm.Call(ctx, refs[rnd.IntN(n)], get{}); err != nil {
					log.Print(err)
					return
				}
				mine = append(mine, sample{at: s.Sub(t0), took: time.Since(s)})
			}
			mu.Lock()
			samples = append(samples, mine...)
			mu.Unlock()
		})
	}
	var spans []span
	move := func(to string, label string, opts ...upgrade.MoveOption) error {
		from := time.Since(t0)
		rep, err := h.Upgrade(ctx, "bench", to, opts...)
		if err != nil {
			return err
		}
		spans = append(spans, span{from, time.Since(t0), label})
		log.Printf("%s: %d machines in %v, longest pause %v", label, rep.Changed, rep.Total, rep.MaxPause)
		return nil
	}
	time.Sleep(500 * time.Millisecond) // load before, in the picture
	err = move("v2", "all at once")
	if err == nil {
		time.Sleep(700 * time.Millisecond)
		err = move("v3", fmt.Sprintf("rolling(%d)", batch), upgrade.WithStrategy(upgrade.Rolling(batch)))
	}
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		return err
	}
	return drawPNG(out, samples, spans, n, clients)
}

// drawPNG plots the p50, p99 and max latency per 10 ms bucket, on a log
// scale, with the upgrades shaded.
func drawPNG(out string, samples []sample, spans []span, n, clients int) error {
	const bucket = 10 * time.Millisecond
	byBucket := map[int][]time.Duration{}
	last := 0
	for _, s := range samples {
		b := int(s.at / bucket)
		byBucket[b] = append(byBucket[b], s.took)
		last = max(last, b)
	}
	var p50, p99, pmax plotter.XYs
	for b := 0; b <= last; b++ {
		ds := byBucket[b]
		if len(ds) == 0 {
			continue
		}
		slices.Sort(ds)
		x := (time.Duration(b) * bucket).Seconds()
		us := func(d time.Duration) float64 { return math.Max(float64(d.Nanoseconds())/1e3, 1) }
		p50 = append(p50, plotter.XY{X: x, Y: us(ds[len(ds)/2])})
		p99 = append(p99, plotter.XY{X: x, Y: us(ds[len(ds)*99/100])})
		pmax = append(pmax, plotter.XY{X: x, Y: us(ds[len(ds)-1])})
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Event latency of %d live machines (%d clients), per 10 ms", n, clients)
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "call latency (µs, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	top := 1.0
	for _, xy := range pmax {
		top = math.Max(top, xy.Y)
	}
	for i, s := range spans {
		shade, err := plotter.NewPolygon(plotter.XYs{
			{X: s.from.Seconds(), Y: 1}, {X: s.to.Seconds(), Y: 1},
			{X: s.to.Seconds(), Y: top * 2}, {X: s.from.Seconds(), Y: top * 2},
		})
		if err != nil {
			return err
		}
		shade.Color = []color.Color{color.NRGBA{255, 170, 60, 70}, color.NRGBA{80, 150, 255, 70}}[i%2]
		shade.LineStyle.Width = 0
		p.Add(shade)
		p.Legend.Add(fmt.Sprintf("%s (%v)", s.label, (s.to-s.from).Round(time.Millisecond)), shade)
	}
	for _, l := range []struct {
		name string
		xys  plotter.XYs
		c    color.Color
	}{
		{"p50", p50, color.RGBA{40, 120, 40, 255}},
		{"p99", p99, color.RGBA{200, 120, 0, 255}},
		{"max", pmax, color.RGBA{200, 30, 30, 255}},
	} {
		line, err := plotter.NewLine(l.xys)
		if err != nil {
			return err
		}
		line.Color = l.c
		line.Width = vg.Points(1)
		p.Add(line)
		p.Legend.Add(l.name, line)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	return p.Save(9*vg.Inch, 4.5*vg.Inch, out)
}
