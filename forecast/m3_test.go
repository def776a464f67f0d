package forecast

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// m3Series is one M3 series with its R references.
type m3Series struct {
	id, group string
	m, h      int
	train     []float64
	test      []float64
	rModel    string
	rETS      refFC
	rTheta    refFC
	subTheta  []float64
}

type refFC struct{ mean, lo95, hi95 []float64 }

func m3Dir() string { return filepath.Join("..", "..", "shared", "data", "m3") }

func readCSV(t testing.TB, name string) [][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(m3Dir(), name))
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	var rows [][]string
	if _, err := r.Read(); err != nil {
		t.Fatal(err)
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, rec)
	}
	return rows
}

func atof(t testing.TB, s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

// loadM3 loads the M3 reference data, skipping (or failing under CI=true)
// when it is missing.
func loadM3(t testing.TB) []*m3Series {
	t.Helper()
	if _, err := os.Stat(m3Dir()); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("M3 reference data missing at %s: %v", m3Dir(), err)
		}
		t.Skipf("M3 reference data missing at %s", m3Dir())
	}
	byID := map[string]*m3Series{}
	var order []*m3Series
	for _, r := range readCSV(t, "series.csv") {
		s := byID[r[0]]
		if s == nil {
			m, _ := strconv.Atoi(r[2])
			h, _ := strconv.Atoi(r[3])
			s = &m3Series{id: r[0], group: strings.ToLower(r[1]), m: m, h: h}
			byID[r[0]] = s
			order = append(order, s)
		}
		v := atof(t, r[6])
		if r[4] == "train" {
			s.train = append(s.train, v)
		} else {
			s.test = append(s.test, v)
		}
	}
	for _, r := range readCSV(t, "r_forecast_8.20.csv") {
		s := byID[r[0]]
		ref := &s.rTheta
		if r[1] == "ets" {
			ref = &s.rETS
			s.rModel = r[2]
		}
		ref.mean = append(ref.mean, atof(t, r[4]))
		ref.lo95 = append(ref.lo95, atof(t, r[7]))
		ref.hi95 = append(ref.hi95, atof(t, r[8]))
	}
	for _, r := range readCSV(t, "m3_submissions.csv") {
		if r[1] == "THETA" {
			s := byID[r[0]]
			s.subTheta = append(s.subTheta, atof(t, r[3]))
		}
	}
	return order
}

// m3Row is one group x method line of the accuracy table.
type m3Row struct {
	group, method   string
	n               int
	smape, mase     float64
	cov95           float64
	modelAgree      float64 // ETS: share with R's model; Theta: within 1%
	hasCov, hasAgee bool
}

type m3Result struct {
	s                *m3Series
	ets, theta, auto Forecast
	thetaOK          bool
}

func runM3(series []*m3Series) []m3Result {
	out := make([]m3Result, len(series))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				s := series[i]
				lv := []float64{95}
				r := m3Result{s: s}
				if f, err := (ETS{}).Fit(s.train, s.m); err == nil {
					r.ets = f.Forecast(s.h, lv)
				}
				if f, err := (Theta{}).Fit(s.train, s.m); err == nil {
					r.theta = f.Forecast(s.h, lv)
				}
				if f, err := (Ensemble{}).Fit(s.train, s.m); err == nil {
					r.auto = f.Forecast(s.h, lv)
				}
				out[i] = r
			}
		})
	}
	for i := range series {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

func rModelName(f Forecast) string { return f.Model }

// m3Table aggregates results per group and method.
func m3Table(res []m3Result) []m3Row {
	type acc struct {
		n                     int
		smape, mase, cov, agr float64
	}
	groups := []string{"yearly", "quarterly", "other", "all"}
	methods := []string{"R ets", "ets", "R thetaf", "theta", "THETA (M3)", "auto"}
	a := map[[2]string]*acc{}
	for _, g := range groups {
		for _, m := range methods {
			a[[2]string{g, m}] = &acc{}
		}
	}
	add := func(g, m string, s *m3Series, f []float64, lo, hi []float64, agree float64) {
		if len(f) != len(s.test) {
			f = make([]float64, len(s.test))
			for i := range f {
				f[i] = math.NaN()
			}
		}
		scale := MASEScale(s.train, s.m)
		for _, gg := range []string{g, "all"} {
			x := a[[2]string{gg, m}]
			x.n++
			x.smape += SMAPE(s.test, f)
			x.mase += MASE(s.test, f, scale)
			if lo != nil {
				x.cov += Coverage(s.test, lo, hi)
			}
			x.agr += agree
		}
	}
	for _, r := range res {
		s := r.s
		g := s.group
		add(g, "R ets", s, s.rETS.mean, s.rETS.lo95, s.rETS.hi95, 1)
		add(g, "R thetaf", s, s.rTheta.mean, s.rTheta.lo95, s.rTheta.hi95, 1)
		add(g, "THETA (M3)", s, s.subTheta, nil, nil, 0)
		agree := 0.0
		if r.ets.Model == s.rModel {
			agree = 1
		}
		add(g, "ets", s, r.ets.Mean, lower95(r.ets), upper95(r.ets), agree)
		agree = 0
		if within(r.theta.Mean, s.rTheta.mean, 0.01) {
			agree = 1
		}
		add(g, "theta", s, r.theta.Mean, lower95(r.theta), upper95(r.theta), agree)
		add(g, "auto", s, r.auto.Mean, lower95(r.auto), upper95(r.auto), 0)
	}
	var rows []m3Row
	for _, g := range groups {
		for _, m := range methods {
			x := a[[2]string{g, m}]
			if x.n == 0 {
				continue
			}
			n := float64(x.n)
			rows = append(rows, m3Row{
				group: g, method: m, n: x.n, smape: x.smape / n, mase: x.mase / n,
				cov95: 100 * x.cov / n, modelAgree: 100 * x.agr / n,
				hasCov: m != "THETA (M3)", hasAgee: m == "ets" || m == "theta",
			})
		}
	}
	return rows
}

func lower95(f Forecast) []float64 {
	if len(f.Lower) == 0 {
		return nil
	}
	return f.Lower[0]
}

func upper95(f Forecast) []float64 {
	if len(f.Upper) == 0 {
		return nil
	}
	return f.Upper[0]
}

// within reports whether every element of got is within rel of want.
func within(got, want []float64, rel float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > rel*math.Abs(want[i]) {
			return false
		}
	}
	return true
}

func formatTable(rows []m3Row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| group | method | series | sMAPE | MASE | 95%% coverage | agreement |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		cov, agr := "", ""
		if r.hasCov {
			cov = fmt.Sprintf("%.1f", r.cov95)
		}
		if r.hasAgee {
			agr = fmt.Sprintf("%.1f%%", r.modelAgree)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.3f | %.3f | %s | %s |\n", r.group, r.method, r.n, r.smape, r.mase, cov, agr)
	}
	return b.String()
}

func findRow(rows []m3Row, g, m string) m3Row {
	for _, r := range rows {
		if r.group == g && r.method == m {
			return r
		}
	}
	return m3Row{}
}

var _ = sort.Strings
