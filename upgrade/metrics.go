package upgrade

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Metrics receives the release handler's figures: counters (Add) and gauges
// (Set), each a name and label pairs ("machine", "phone", "op", "upgrade").
// The core of this package depends on nothing else; [PromMetrics] adapts it
// to a Prometheus scrape without the Prometheus client library.
//
// The handler reports:
//
//	hotline_upgrades_total{machine,op,result}              counter
//	hotline_upgrade_machines_changed_total{machine}         counter
//	hotline_upgrade_last_max_pause_seconds{machine}         gauge
//	hotline_upgrade_last_duration_seconds{machine}          gauge
//	hotline_machines{machine,version}                       gauge
//
// Implementations must be safe for concurrent use.
type Metrics interface {
	Add(name string, labels []string, v float64)
	Set(name string, labels []string, v float64)
}

// PromMetrics keeps [Metrics] in memory and serves them in the Prometheus
// text exposition format (version 0.0.4). The zero value is ready to use
// and safe for concurrent use; do not copy it once used.
type PromMetrics struct {
	mu     sync.Mutex
	series map[string]*promSeries // by name + labels
}

type promSeries struct {
	name, labels, kind string
	v                  float64
}

// Add adds v to a counter.
func (p *PromMetrics) Add(name string, labels []string, v float64) {
	p.put(name, labels, "counter", v, true)
}

// Set sets a gauge.
func (p *PromMetrics) Set(name string, labels []string, v float64) {
	p.put(name, labels, "gauge", v, false)
}

func (p *PromMetrics) put(name string, labels []string, kind string, v float64, add bool) {
	var b strings.Builder
	for i := 0; i+1 < len(labels); i += 2 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(labels[i])
		b.WriteString("=")
		b.WriteString(strconv.Quote(labels[i+1]))
	}
	key := name + "{" + b.String() + "}"
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.series == nil {
		p.series = make(map[string]*promSeries)
	}
	s := p.series[key]
	if s == nil {
		s = &promSeries{name: name, labels: b.String(), kind: kind}
		p.series[key] = s
	}
	if add {
		s.v += v
	} else {
		s.v = v
	}
}

// WriteTo writes every series in the text exposition format, sorted.
func (p *PromMetrics) WriteTo(w io.Writer) (int64, error) {
	p.mu.Lock()
	all := make([]promSeries, 0, len(p.series))
	for _, s := range p.series {
		all = append(all, *s)
	}
	p.mu.Unlock()
	slices.SortFunc(all, func(a, b promSeries) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return strings.Compare(a.labels, b.labels)
	})
	var sb strings.Builder
	for i, s := range all {
		if i == 0 || all[i-1].name != s.name {
			fmt.Fprintf(&sb, "# TYPE %s %s\n", s.name, s.kind)
		}
		fmt.Fprintf(&sb, "%s{%s} %s\n", s.name, s.labels, strconv.FormatFloat(s.v, 'g', -1, 64))
	}
	n, err := io.WriteString(w, sb.String())
	return int64(n), err
}

// ServeHTTP serves the metrics to a Prometheus scrape.
func (p *PromMetrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if _, err := p.WriteTo(w); err != nil {
		return // the scraper went away
	}
}
