package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestClient(t *testing.T, addrs ...string) *Client {
	t.Helper()
	c, err := New(Config{Addrs: addrs, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeAck(w http.ResponseWriter, accepted int) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"tx_id": "tx1", "accepted": accepted, "rejected": 0, "errors": []any{}, "node": "n1", "index": 7})
}

func TestIngestRetriesWithSameKey(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		n := len(keys)
		mu.Unlock()
		if string(b) != "a,b\n1,2\n" {
			t.Errorf("attempt %d body: got %q", n, b)
		}
		if n < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":"no leader"}`)
			return
		}
		writeAck(w, 1)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	res, err := c.Ingest(t.Context(), "ds", ContentTypeCSV, []byte("a,b\n1,2\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1 || res.Attempts != 3 || res.Index != 7 {
		t.Errorf("got %+v, want 1 accepted after 3 attempts at index 7", res)
	}
	if len(keys) != 3 || keys[0] == "" || keys[1] != keys[0] || keys[2] != keys[0] || res.Key != keys[0] {
		t.Errorf("keys: got %q (result %q), want the same non-empty key 3 times", keys, res.Key)
	}
	if st := c.Stats(); st.Retries != 2 || st.Requests != 3 {
		t.Errorf("stats: got %+v, want 3 requests, 2 retries", st)
	}
}

func TestFailover(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // connection refused
	var notLeader atomic.Int64
	follower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		notLeader.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":"cluster: not leader"}`)
	}))
	defer follower.Close()
	var got atomic.Value
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Idempotency-Key"))
		writeAck(w, 2)
	}))
	defer leader.Close()

	c := newTestClient(t, deadURL, follower.URL, leader.URL)
	res, err := c.Ingest(t.Context(), "ds", ContentTypeNDJSON, []byte("{}\n{}\n"), "k-1")
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 2 || got.Load() != "k-1" || res.Attempts != 3 || notLeader.Load() != 1 {
		t.Errorf("got %+v key %v, follower hits %d; want 2 accepted with k-1 on the 3rd attempt", res, got.Load(), notLeader.Load())
	}
	if c.Addr() != leader.URL || c.Stats().Failovers != 2 {
		t.Errorf("current address %s after %d failovers, want %s after 2", c.Addr(), c.Stats().Failovers, leader.URL)
	}
	// The client stays on the working node.
	if _, err := c.Ingest(t.Context(), "ds", ContentTypeNDJSON, []byte("{}\n"), ""); err != nil || c.Stats().Requests != 4 {
		t.Errorf("second call: err %v, %d requests; want success on the first try", err, c.Stats().Requests)
	}
}

func TestDataErrorsNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
	}{{"bad request", 400}, {"not found", 404}, {"too large", 413}, {"unsupported", 415}, {"server bug", 500}} {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.Header().Set("X-Demandflow-Node", "n9")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, `{"error":"line 3: bad","detail":{"line":3}}`)
			}))
			defer srv.Close()
			c := newTestClient(t, srv.URL)
			_, err := c.Ingest(t.Context(), "ds", ContentTypeCSV, []byte("x"), "")
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("got %v, want *APIError", err)
			}
			if ae.Status != tc.status || ae.Message != "line 3: bad" || string(ae.Detail) != `{"line":3}` || ae.Node != "n9" {
				t.Errorf("got %+v", ae)
			}
			if hits.Load() != 1 {
				t.Errorf("got %d attempts, want 1", hits.Load())
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	var first time.Time
	var gap atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.IsZero() {
			first = time.Now()
			w.Header().Set("Retry-After", "0.2")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		gap.Store(int64(time.Since(first)))
		writeAck(w, 1)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL) // backoff 1ms: only Retry-After can make it wait
	if _, err := c.Ingest(t.Context(), "ds", ContentTypeCSV, []byte("x"), ""); err != nil {
		t.Fatal(err)
	}
	if d := time.Duration(gap.Load()); d < 200*time.Millisecond {
		t.Errorf("retry after %v, want >= 200ms (Retry-After)", d)
	}
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{{"", 0}, {"3", 3 * time.Second}, {"x", 0}, {time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0}} {
		if got := parseRetryAfter(tc.in); got != tc.want {
			t.Errorf("parseRetryAfter(%q): got %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestGiveUp(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	c, _ := New(Config{Addrs: []string{srv.URL}, MaxRetries: 2, Backoff: time.Millisecond})
	_, err := c.Ingest(t.Context(), "ds", ContentTypeCSV, []byte("x"), "")
	var ae *APIError
	if !errors.Is(err, ErrGaveUp) || !errors.As(err, &ae) || ae.Status != 502 || hits.Load() != 3 {
		t.Errorf("got %v after %d hits, want ErrGaveUp wrapping a 502 after 3", err, hits.Load())
	}
}

func TestTimeoutRetried(t *testing.T) {
	var hits atomic.Int64
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			select {
			case <-block:
			case <-r.Context().Done():
			}
			return
		}
		writeAck(w, 1)
	}))
	defer srv.Close()
	defer close(block)
	c, _ := New(Config{Addrs: []string{srv.URL}, Timeout: 100 * time.Millisecond, Backoff: time.Millisecond})
	res, err := c.Ingest(t.Context(), "ds", ContentTypeCSV, []byte("x"), "")
	if err != nil || res.Attempts != 2 {
		t.Fatalf("got %+v, %v; want success on attempt 2", res, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Ingest(ctx, "ds", ContentTypeCSV, []byte("x"), ""); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled ctx: got %v, want context.Canceled", err)
	}
}

func TestDatasetsAndReads(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/datasets", func(w http.ResponseWriter, r *http.Request) {
		var s Schema
		_ = json.NewDecoder(r.Body).Decode(&s)
		w.WriteHeader(201)
		_ = json.NewEncoder(w).Encode(map[string]any{"dataset": Dataset{Schema: s}})
	})
	mux.HandleFunc("GET /v1/datasets", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"datasets":[{"name":"a","rows_accepted":5},{"name":"b"}]}`)
	})
	mux.HandleFunc("GET /v1/datasets/{name}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"dataset":{"name":"`+r.PathValue("name")+`","series":3,"rows_accepted":9}}`)
	})
	mux.HandleFunc("DELETE /v1/datasets/{name}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"deleted":"x"}`)
	})
	mux.HandleFunc("GET /v1/datasets/{name}/series", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("sku") != "A" || r.URL.Query().Get("limit") != "2" {
			t.Errorf("series query: %s", r.URL.RawQuery)
		}
		_, _ = io.WriteString(w, `{"series":[{"series_id":"00000000000000ab","dimensions":{"sku":"A"}}],"next_cursor":"00000000000000ac"}`)
	})
	mux.HandleFunc("GET /v1/datasets/{name}/series/{id}/observations", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"series_id":"`+r.PathValue("id")+`","observations":[{"period":"2024-03","value":4.5}]}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := newTestClient(t, srv.Listener.Addr().String()) // no scheme: http assumed
	ctx := t.Context()
	d, err := c.CreateDataset(ctx, Schema{Name: "shop", Frequency: "week", Period: "week", Dimensions: []string{"sku"}, Measure: "units"})
	if err != nil || d.Name != "shop" || d.Frequency != "week" {
		t.Fatalf("create: got %+v, %v", d, err)
	}
	if d, err = c.CreateDataset(ctx, json.RawMessage(`{"name":"raw"}`)); err != nil || d.Name != "raw" {
		t.Fatalf("create raw: got %+v, %v", d, err)
	}
	all, err := c.Datasets(ctx)
	if err != nil || len(all) != 2 || all[0].RowsAccepted != 5 {
		t.Fatalf("datasets: got %+v, %v", all, err)
	}
	if d, err = c.Dataset(ctx, "x"); err != nil || d.Series != 3 || d.RowsAccepted != 9 {
		t.Fatalf("dataset: got %+v, %v", d, err)
	}
	if err := c.DeleteDataset(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	page, err := c.Series(ctx, "x", SeriesQuery{Filter: map[string]string{"sku": "A"}, Limit: 2})
	if err != nil || len(page.Series) != 1 || page.NextCursor != "00000000000000ac" || page.Series[0].Dimensions["sku"] != "A" {
		t.Fatalf("series: got %+v, %v", page, err)
	}
	obs, err := c.Observations(ctx, "x", page.Series[0].ID, ObservationsQuery{From: "2024-01"})
	if err != nil || len(obs.Observations) != 1 || obs.Observations[0].Value != 4.5 || obs.SeriesID != "00000000000000ab" {
		t.Fatalf("observations: got %+v, %v", obs, err)
	}
	if _, err := c.Forecasts(ctx, "x", nil); err == nil {
		t.Errorf("forecasts on a server without the endpoint: got no error")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		addrs []string
		ok    bool
	}{{"none", nil, false}, {"empty", []string{""}, false}, {"ftp", []string{"ftp://x"}, false},
		{"host port", []string{"127.0.0.1:7070"}, true}, {"https", []string{"https://n1:7070/"}, true}} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{Addrs: tc.addrs})
			if (err == nil) != tc.ok {
				t.Errorf("got %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
