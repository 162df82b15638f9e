package upgrade_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotline-go/hotline/upgrade"
)

// Every strategy that moves machines, with every kind of selector: the
// selected machines move, the others stay, and only the zero selector
// makes the new version current. (NewSessions and Shadow: see their
// tests of selectors.)
func TestStrategiesWithSelectors(t *testing.T) {
	strategies := map[string]func() upgrade.Strategy{
		"all":     upgrade.AllAtOnce,
		"rolling": func() upgrade.Strategy { return upgrade.Rolling(2) },
		"canary": func() upgrade.Strategy {
			return upgrade.Canary(upgrade.CanaryCount(1), upgrade.CanaryWindow(time.Second), upgrade.CanaryThen(upgrade.Rolling(2)))
		},
	}
	selectors := []struct {
		name  string
		sel   upgrade.Selector
		moved map[string]bool
	}{
		{"all", upgrade.Selector{}, map[string]bool{"a": true, "b": true, "c": true, "d": true, "e": true}},
		{"ids", upgrade.Selector{IDs: []string{"a", "d", "e"}}, map[string]bool{"a": true, "d": true, "e": true}},
		{"tags", upgrade.Selector{Tags: map[string]string{"cohort": "beta"}}, map[string]bool{"b": true, "c": true}},
	}
	for sname, strat := range strategies {
		for _, sc := range selectors {
			t.Run(sname+"/"+sc.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					h := newCalc(t)
					refs := startCalc(t, h, []string{"a", "b", "c", "d", "e"}, "b", "c")
					rep, err := h.Upgrade(t.Context(), "calc", "v2", upgrade.WithStrategy(strat()), upgrade.WithSelector(sc.sel))
					require.NoError(t, err)
					require.Equal(t, len(sc.moved), rep.Changed)
					for id, r := range refs {
						want := "v1"
						if sc.moved[id] {
							want = "v2"
						}
						require.Equal(t, want, version(t, r), id)
					}
					cur := "v1"
					if len(sc.moved) == len(refs) && sc.name == "all" {
						cur = "v2"
					}
					require.Equal(t, cur, calcStatus(t, h).Current)
				})
			})
		}
	}
}
