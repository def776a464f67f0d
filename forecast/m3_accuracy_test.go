package forecast

import (
	"testing"
)

// TestM3Accuracy checks Theta, AutoETS and the auto ensemble against R
// forecast 8.20 and the original M3 submissions on 1,575 M3 series (see
// shared/data/m3/README.md). Under the race detector every 3rd series is
// used; `make accuracy` runs the full set and prints the table.
func TestM3Accuracy(t *testing.T) {
	all := loadM3(t)
	series := all
	if raceEnabled || testing.Short() {
		series = nil
		for i := 0; i < len(all); i += 3 {
			series = append(series, all[i])
		}
	}
	res := runM3(series)
	rows := m3Table(res)
	t.Logf("M3 accuracy, %d series:\n%s", len(series), formatTable(rows))
	for _, g := range []string{"yearly", "quarterly", "other"} {
		t.Run(g, func(t *testing.T) {
			rT, th := findRow(rows, g, "R thetaf"), findRow(rows, g, "theta")
			if th.modelAgree < 95 {
				t.Errorf("theta: %.1f%% of series within 1%% of R thetaf, want >= 95%%", th.modelAgree)
			}
			if !relWithin(th.smape, rT.smape, 0.01) || !relWithin(th.mase, rT.mase, 0.01) {
				t.Errorf("theta: sMAPE/MASE %.3f/%.3f, want within 1%% of R %.3f/%.3f", th.smape, th.mase, rT.smape, rT.mase)
			}
			rE, e := findRow(rows, g, "R ets"), findRow(rows, g, "ets")
			if e.smape > rE.smape*1.02 || e.mase > rE.mase*1.02 {
				t.Errorf("ets: sMAPE/MASE %.3f/%.3f, want <= R %.3f/%.3f + 2%%", e.smape, e.mase, rE.smape, rE.mase)
			}
			if e.modelAgree < 70 {
				t.Errorf("ets: same model as R for %.1f%% of series, want >= 70%%", e.modelAgree)
			}
			if d := e.cov95 - rE.cov95; d > 5 || d < -5 {
				t.Errorf("ets: 95%% coverage %.1f, want within 5 points of R's %.1f", e.cov95, rE.cov95)
			}
		})
	}
	a, th := findRow(rows, "all", "auto"), findRow(rows, "all", "THETA (M3)")
	if a.smape >= th.smape {
		t.Errorf("auto: sMAPE %.3f on all groups, want < M3 THETA %.3f", a.smape, th.smape)
	}
}

func relWithin(got, want, rel float64) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return d <= rel*want
}
