package node

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// shopHistory returns CSV rows of 48 months for 3 series of the shop dataset.
func shopHistory() []byte {
	var b strings.Builder
	b.WriteString(strings.Join(shopHeader, ",") + "\n")
	for s, p := range []string{"apple", "pear", "plum"} {
		for i := range 48 {
			v := 100 + 20*float64(s) + 15*math.Sin(2*math.Pi*float64(i)/12) + float64(i%5)
			fmt.Fprintf(&b, "%d-%02d,%s,EU-DE,%.2f,1.5,o-%s-%d\n", 2021+i/12, i%12+1, p, v, p, i)
		}
	}
	return []byte(b.String())
}

// waitForecasts polls until every series of ds has a forecast.
func waitForecasts(t *testing.T, n *Node, ds string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, dirty, err := n.cl.Store().ForecastCount(t.Context(), ds)
		if err == nil && c == want && dirty == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("forecasts of %s: %d stored, %d pending after 30s (err %v), want %d", ds, c, dirty, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestForecastAPIRoundTrip(t *testing.T) {
	n := startNode(t, nil)
	createShop(t, n)
	if r := ingestBody(t, n, "shop", "csv", shopHistory(), nil); r.status != http.StatusOK {
		t.Fatalf("ingest: %d %s", r.status, r.body)
	}
	waitForecasts(t, n, "shop", 3)
	base := n.URL() + "/v1/datasets/shop"

	// JSON: every series, default horizon 2 seasons, levels 80 and 95.
	r := do(t, "GET", base+"/forecasts", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET forecasts: %d %s", r.status, r.body)
	}
	var js struct {
		Levels    []float64 `json:"levels"`
		Forecasts []struct {
			SeriesID   string            `json:"series_id"`
			Dimensions map[string]string `json:"dimensions"`
			Model      string            `json:"model"`
			LastPeriod string            `json:"last_period"`
			Points     []map[string]any  `json:"points"`
		} `json:"forecasts"`
	}
	if err := json.Unmarshal(r.body, &js); err != nil {
		t.Fatal(err)
	}
	if len(js.Forecasts) != 3 || len(js.Levels) != 2 {
		t.Fatalf("JSON: got %d series, levels %v; want 3 and [80 95]", len(js.Forecasts), js.Levels)
	}
	f0 := js.Forecasts[0]
	if len(f0.Points) != 24 || f0.LastPeriod != "2024-12" || f0.Points[0]["period"] != "2025-01" || !strings.HasPrefix(f0.Model, "auto(") {
		t.Errorf("JSON series: got %d points, last %s, first %v, model %q", len(f0.Points), f0.LastPeriod, f0.Points[0]["period"], f0.Model)
	}
	p := f0.Points[0]
	if !(p["lo_95"].(float64) <= p["lo_80"].(float64) && p["lo_80"].(float64) <= p["mean"].(float64) && p["mean"].(float64) <= p["hi_80"].(float64)) {
		t.Errorf("interval order: %v", p)
	}

	// Filters and narrowing: one dimension value, horizon 3, level 80.
	r = do(t, "GET", base+"/forecasts?product=pear&horizon=3&levels=80", map[string]string{"Accept": "text/csv"}, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET CSV: %d %s", r.status, r.body)
	}
	recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if want := "series_id,product,region,step,period,mean,lo_80,hi_80,model"; strings.Join(recs[0], ",") != want || len(recs) != 4 {
		t.Fatalf("CSV: got header %v and %d rows, want %s and 3 rows", recs[0], len(recs)-1, want)
	}
	if recs[1][1] != "pear" || recs[3][3] != "3" || recs[3][4] != "2025-03" {
		t.Errorf("CSV rows: %v", recs[1:])
	}
	pearID := recs[1][0]

	// Arrow: the same forecasts by series id.
	r = do(t, "GET", base+"/forecasts?series_id="+pearID, map[string]string{"Accept": "application/vnd.apache.arrow.stream"}, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET Arrow: %d %s", r.status, r.body)
	}
	rd, err := ipc.NewReader(bytes.NewReader(r.body), ipc.WithAllocator(memory.NewGoAllocator()))
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for rd.Next() {
		rec := rd.RecordBatch()
		rows += int(rec.NumRows())
		if got := rec.Schema().Field(rec.Schema().NumFields() - 1).Name; got != "model" || rec.Schema().Field(5).Name != "mean" {
			t.Errorf("Arrow schema: %v", rec.Schema())
		}
	}
	rd.Release()
	if rows != 24 {
		t.Errorf("Arrow rows: got %d, want 24", rows)
	}

	// Series detail: dimensions, history and forecast.
	r = do(t, "GET", base+"/series/"+pearID, nil, nil)
	m := r.json(t)
	if r.status != http.StatusOK || len(m["history"].([]any)) != 48 || m["forecast"] == nil || m["dimensions"].(map[string]any)["product"] != "pear" {
		t.Errorf("series detail: %d %s", r.status, r.body)
	}

	// Bad queries name the parameter.
	for _, tc := range []struct{ query, want string }{
		{"levels=99", "levels"}, {"horizon=0", "horizon"}, {"colour=red", "colour"}, {"series_id=xyz", "series_id"},
	} {
		r := do(t, "GET", base+"/forecasts?"+tc.query, nil, nil)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%s: got %d %s, want 400 naming %s", tc.query, r.status, r.body, tc.want)
		}
	}

	// Changing the configuration refits everything with it.
	r = do(t, "PUT", base+"/forecast", nil, []byte(`{"model":"theta","horizon":4,"levels":[90]}`))
	if r.status != http.StatusOK {
		t.Fatalf("PUT forecast: %d %s", r.status, r.body)
	}
	if r := do(t, "PUT", base+"/forecast", nil, []byte(`{"model":"prophet"}`)); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "forecast.model") {
		t.Errorf("bad model: got %d %s", r.status, r.body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		fc, ok, _ := n.cl.Store().Forecast("shop", mustParseID(t, pearID))
		if ok && len(fc.Mean) == 4 && fc.Model == "Theta" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no theta forecast after config change")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := do(t, "POST", base+"/forecasts/refresh", nil, []byte(`{"filter":{"product":"plum"}}`)); r.status != http.StatusAccepted {
		t.Errorf("refresh: %d %s", r.status, r.body)
	}
}

func mustParseID(t *testing.T, s string) uint64 {
	id, err := parseSeriesID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestBacktestEndpoint(t *testing.T) {
	n := startNode(t, nil)
	createShop(t, n)
	if r := ingestBody(t, n, "shop", "csv", shopHistory(), nil); r.status != http.StatusOK {
		t.Fatalf("ingest: %d %s", r.status, r.body)
	}
	url := n.URL() + "/v1/datasets/shop/backtest"
	r := do(t, "POST", url, nil, []byte(`{"model":"theta","horizon":6,"windows":2,"limit":2}`))
	if r.status != http.StatusOK {
		t.Fatalf("backtest: %d %s", r.status, r.body)
	}
	var resp BacktestResponse
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Model != "theta" || resp.Horizon != 6 || resp.Step != 6 || len(resp.Series) != 2 || resp.NextCursor == "" ||
		resp.TotalSeries != 3 || resp.Aggregate.Series != 2 || resp.Aggregate.SMAPE == nil || resp.Aggregate.Coverage["95"] == nil {
		t.Fatalf("backtest response: %s", r.body)
	}
	if s := resp.Series[0]; s.Windows != 2 || s.MASE == nil || s.WAPE == nil || s.Bias == nil || s.Dimensions["region"] != "EU-DE" {
		t.Errorf("series result: %+v", s)
	}
	r = do(t, "POST", url, nil, []byte(`{"horizon":6,"windows":2,"cursor":"`+resp.NextCursor+`"}`))
	resp = BacktestResponse{}
	if err := json.Unmarshal(r.body, &resp); err != nil || len(resp.Series) != 1 || resp.NextCursor != "" || resp.Model != "auto" {
		t.Errorf("second page: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", url, nil, []byte(`{"horizon":30,"windows":3}`)); r.status != http.StatusOK || !strings.Contains(string(r.body), "too short") {
		t.Errorf("too short: got %d %s", r.status, r.body)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"model":"nope"}`, "model"},
		{`{"horizon":-1}`, "horizon"},
		{`{"windows":1000}`, "windows"},
		{`{"step":-2}`, "step"},
		{`{"levels":[120]}`, "levels"},
		{`{"series_id":["zz"]}`, "series_id"},
		{`{"filter":{"colour":"red"}}`, "filter.colour"},
		{`{"horizon":"six"}`, "horizon"},
		{`{"bogus":1}`, "bogus"},
	} {
		r := do(t, "POST", url, nil, []byte(tc.body))
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%s: got %d %s, want 400 naming %s", tc.body, r.status, r.body, tc.want)
		}
	}
	if r := do(t, "POST", n.URL()+"/v1/datasets/none/backtest", nil, []byte(`{}`)); r.status != http.StatusNotFound {
		t.Errorf("unknown dataset: got %d", r.status)
	}
}
