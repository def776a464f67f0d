package main

import (
	"reflect"
	"testing"
)

func TestSplitDimFlags(t *testing.T) {
	known := map[string]bool{"dataset": true, "addr": true, "json": true}
	for _, tc := range []struct {
		name     string
		args     []string
		wantRest []string
		wantDims map[string]string
		wantErr  bool
	}{
		{"flags and dimensions", []string{"--dataset", "shop", "--product", "apple", "--region=EU-DE", "--json"},
			[]string{"--dataset", "shop", "--json"}, map[string]string{"product": "apple", "region": "EU-DE"}, false},
		{"known with equals", []string{"--addr=http://x", "--product", "pear"},
			[]string{"--addr=http://x"}, map[string]string{"product": "pear"}, false},
		{"dimension without value", []string{"--product"}, nil, nil, true},
		{"dimension followed by flag", []string{"--product", "--json"}, nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rest, dims, err := splitDimFlags(tc.args, func(n string) bool { return known[n] })
			if (err != nil) != tc.wantErr {
				t.Fatalf("err: got %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if !reflect.DeepEqual(rest, tc.wantRest) || !reflect.DeepEqual(dims, tc.wantDims) {
				t.Errorf("got %v %v, want %v %v", rest, dims, tc.wantRest, tc.wantDims)
			}
		})
	}
}

func TestForecastGetAndBacktestFlags(t *testing.T) {
	root := newRootCmd()
	cmd, _, err := root.Find([]string{"forecast", "get"})
	if err != nil || cmd.Name() != "get" {
		t.Fatalf("forecast get: %v", err)
	}
	dims, err := parseDimArgs(cmd, []string{"--dataset", "shop", "--product", "apple", "--horizon", "3", "--addr", "http://n1:7070"})
	if err != nil || !reflect.DeepEqual(dims, map[string]string{"product": "apple"}) {
		t.Fatalf("parse: got %v %v", dims, err)
	}
	if v, _ := cmd.Flags().GetInt("horizon"); v != 3 {
		t.Errorf("horizon: got %d, want 3", v)
	}
	if v, _ := cmd.Flags().GetString("addr"); v != "http://n1:7070" {
		t.Errorf("addr: got %q", v)
	}
	bt, _, err := newRootCmd().Find([]string{"backtest"})
	if err != nil || bt.Name() != "backtest" {
		t.Fatalf("backtest: %v", err)
	}
	if _, err := parseDimArgs(bt, []string{"--dataset", "shop", "--windows", "x"}); err == nil {
		t.Error("--windows x: no error")
	}
	if _, err := parseDimArgs(bt, []string{"--dataset", "shop", "stray"}); err == nil {
		t.Error("stray argument: no error")
	}
	o := &backtestOpts{windows: 3, page: 50, horizon: 6, levels: "80,95"}
	req, err := o.request(map[string]string{"region": "EU"}, "abc")
	if err != nil || req["horizon"] != 6 || req["limit"] != 50 || req["cursor"] != "abc" || !reflect.DeepEqual(req["levels"], []float64{80, 95}) {
		t.Errorf("request: got %v %v", req, err)
	}
	agg := aggregateBacktest([]backtestSeries{
		{backtestMetrics: bm(1, 10, 20, 1, 0.8)}, {backtestMetrics: bm(3, 30, 40, -1, 0.6)}, {Error: "too short"},
	}, []float64{80})
	if agg.Series != 2 || *agg.MASE != 2 || *agg.SMAPE != 20 || *agg.Bias != 0 || *agg.Coverage["80"] != 0.7 {
		t.Errorf("aggregate: got %+v", agg)
	}
}

func bm(mase, smape, wape, bias, cov float64) backtestMetrics {
	return backtestMetrics{MASE: &mase, SMAPE: &smape, WAPE: &wape, Bias: &bias, Coverage: map[string]*float64{"80": &cov}}
}
