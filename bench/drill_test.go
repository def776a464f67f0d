package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCluster is an in-process stand-in for a Demandflow cluster: one
// httptest server per node speaking just the endpoints the drill uses.
// A killed node drops every connection; 40ms after a leader's death the
// first live node becomes leader; a restarted node is ready after 30ms.
type fakeCluster struct {
	mu       sync.Mutex
	names    []string
	srvs     map[string]*httptest.Server
	down     map[string]bool
	dead     map[string]bool // members view: reported dead
	readyAt  map[string]time.Time
	leader   string
	index    uint64
	keys     map[string]int
	rows     int64
	datasets map[string]bool
	lose     int64 // rows the last node "loses" (for the verdict test)
	// objects maps an accepted row's object id to its apply event;
	// trackSkew, if set, is a node that reports every journey with an
	// extra event (for the tracking verdict test).
	objects   map[string]map[string]any
	trackSkew string
	timers    sync.WaitGroup
}

func newFakeCluster(t *testing.T, n int) *fakeCluster {
	f := &fakeCluster{srvs: map[string]*httptest.Server{}, down: map[string]bool{}, dead: map[string]bool{},
		readyAt: map[string]time.Time{}, keys: map[string]int{}, datasets: map[string]bool{}, objects: map[string]map[string]any{}}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		f.names = append(f.names, name)
		f.srvs[name] = httptest.NewServer(f.handler(name))
	}
	f.leader = "n1"
	t.Cleanup(func() {
		f.timers.Wait()
		for _, s := range f.srvs {
			s.CloseClientConnections()
			s.Close()
		}
	})
	return f
}

func (f *fakeCluster) Nodes() []DrillNode {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []DrillNode
	for _, n := range f.names {
		d := DrillNode{Name: n}
		if !f.down[n] {
			d.URL = f.srvs[n].URL
		}
		out = append(out, d)
	}
	return out
}

func (f *fakeCluster) Kill(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[name] = true
	if f.leader == name {
		f.leader = ""
		f.timers.Go(func() {
			time.Sleep(20 * time.Millisecond)
			f.mu.Lock()
			f.dead[name] = true
			f.mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, n := range f.names {
				if !f.down[n] {
					f.leader = n
					return
				}
			}
		})
	}
	f.srvs[name].CloseClientConnections()
	return nil
}

func (f *fakeCluster) Restart(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[name], f.dead[name] = false, false
	f.readyAt[name] = time.Now().Add(30 * time.Millisecond)
	return nil
}

func (f *fakeCluster) handler(name string) http.Handler {
	js := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.down[name] {
			// A dead process: drop the connection.
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			return
		}
		ready := time.Now().After(f.readyAt[name])
		switch p := r.URL.Path; {
		case p == "/readyz":
			if !ready || f.leader == "" {
				js(w, 503, map[string]string{"error": "not ready"})
				return
			}
			js(w, 200, map[string]bool{"ready": true})
		case p == "/v1/cluster/raft":
			state := "Follower"
			if f.leader == name {
				state = "Leader"
			}
			applied := f.index
			if !ready {
				applied = 0
			}
			addr := ""
			if f.leader != "" {
				addr = f.leader + ":raft"
			}
			js(w, 200, map[string]any{"state": state, "leader": map[string]string{"id": f.leader, "address": addr},
				"commit_index": f.index, "applied_index": applied, "node": name})
		case p == "/v1/cluster/members":
			var ms []map[string]any
			for _, n := range f.names {
				st := "alive"
				if f.dead[n] {
					st = "dead"
				}
				ms = append(ms, map[string]any{"name": n, "status": st, "raft_addr": n + ":raft", "leader": n == f.leader})
			}
			js(w, 200, map[string]any{"members": ms, "node": name})
		case p == "/v1/alarms":
			active := []map[string]string{}
			for _, n := range f.names {
				if f.dead[n] {
					active = append(active, map[string]string{"id": "node_down:" + n})
				}
			}
			js(w, 200, map[string]any{"active": active, "node": name})
		case p == "/v1/datasets" && r.Method == http.MethodPost:
			var s struct{ Name string }
			_ = json.NewDecoder(r.Body).Decode(&s)
			if f.datasets[s.Name] {
				js(w, 409, map[string]string{"error": "exists"})
				return
			}
			f.datasets[s.Name] = true
			js(w, 201, map[string]any{"dataset": map[string]string{"name": s.Name}})
		case strings.HasSuffix(p, "/records") && r.Method == http.MethodPost:
			if f.leader == "" {
				js(w, 503, map[string]string{"error": "cluster: no leader"})
				return
			}
			body, _ := io.ReadAll(r.Body)
			n := bytes.Count(body, []byte("\n"))
			key := r.Header.Get("Idempotency-Key")
			replayed := true
			if _, ok := f.keys[key]; !ok {
				f.keys[key], replayed = n, false
				f.rows += int64(n)
				f.index++
				for i, m := range objectIDRE.FindAllSubmatch(body, -1) {
					f.objects[string(m[1])] = map[string]any{"time": time.Unix(int64(f.index), 0).UTC(), "tx_id": key,
						"row": i + 1, "stage": "apply", "outcome": "accepted"}
				}
			}
			js(w, 200, map[string]any{"tx_id": key, "accepted": f.keys[key], "node": name, "index": f.index, "replayed": replayed})
		case strings.HasPrefix(p, "/v1/tracking/objects/"):
			id := strings.TrimPrefix(p, "/v1/tracking/objects/")
			ev, ok := f.objects[id]
			if !ok {
				js(w, 404, map[string]string{"error": "object " + id + " is not tracked"})
				return
			}
			evs := []map[string]any{ev}
			if name == f.trackSkew {
				evs = append(evs, map[string]any{"time": ev["time"], "tx_id": "other", "row": 1, "stage": "validate", "outcome": "accepted"})
			}
			js(w, 200, map[string]any{"object_id": id, "events": evs, "node": name})
		case strings.HasPrefix(p, "/v1/datasets/") && r.Method == http.MethodGet:
			rows := f.rows
			if name == f.names[len(f.names)-1] {
				rows -= f.lose
			}
			js(w, 200, map[string]any{"dataset": map[string]any{"rows_accepted": rows}, "node": name})
		default:
			js(w, 404, map[string]string{"error": "no route " + p})
		}
	})
}

var objectIDRE = regexp.MustCompile(`"object_id":"([^"]+)"`)

func fastDrill(f *fakeCluster, cycles int) DrillConfig {
	return DrillConfig{Controller: f, Cycles: cycles, Batch: 20, Rate: 20000, Duration: 200 * time.Millisecond,
		StepTimeout: 5 * time.Second, PollInterval: 2 * time.Millisecond, RetryInterval: 2 * time.Millisecond, SettleAcks: 3}
}

func TestRunFailoverDrill(t *testing.T) {
	f := newFakeCluster(t, 3)
	rep, err := RunFailoverDrill(t.Context(), fastDrill(f, 3))
	if err != nil {
		t.Fatalf("drill: %v", err)
	}
	if len(rep.Cycles) != 3 {
		t.Fatalf("cycles: got %d, want 3", len(rep.Cycles))
	}
	for _, c := range rep.Cycles {
		if c.Killed == "" || c.NewLeader == "" || c.NewLeader == c.Killed {
			t.Errorf("cycle %d: killed %q, new leader %q", c.Cycle, c.Killed, c.NewLeader)
		}
		if c.DetectMS < 0 || c.ElectMS < 0 || c.FailoverMS < 0 || c.RejoinMS < 0 {
			t.Errorf("cycle %d: unmeasured step: %+v", c.Cycle, c)
		}
		if c.DetectMS > c.ElectMS {
			t.Errorf("cycle %d: detect %v after elect %v", c.Cycle, c.DetectMS, c.ElectMS)
		}
		if c.Errors > 0 && c.ErrorWindowMS <= 0 {
			t.Errorf("cycle %d: %d errors but error window %v", c.Cycle, c.Errors, c.ErrorWindowMS)
		}
	}
	if !rep.OK() || rep.AckedRows == 0 || rep.AckedRows != f.rows {
		t.Errorf("rows: acked %d, fake stored %d, report %+v", rep.AckedRows, f.rows, rep.StoredRows)
	}
	if len(rep.StoredRows) != 3 {
		t.Errorf("stored_rows: got %v, want 3 nodes", rep.StoredRows)
	}
	if rep.TrackedObjects < 2 || rep.TrackingMismatches != 0 {
		t.Errorf("tracking: %d objects checked, %d mismatches (%v), want >= 2 and 0", rep.TrackedObjects, rep.TrackingMismatches, rep.ErrorSamples)
	}
	for _, k := range []string{"failover_ms", "detect_ms", "elect_ms"} {
		if _, ok := rep.Summary[k]; !ok {
			t.Errorf("summary lacks %s", k)
		}
	}

	// The JSON has the DESIGN.md shape.
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Cycles []map[string]json.RawMessage `json:"cycles"`
		Acked  *int64                       `json:"acked_rows"`
		Stored map[string]int64             `json:"stored_rows"`
		Lost   *int64                       `json:"lost_rows"`
		Dup    *int64                       `json:"duplicate_rows"`
	}
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m.Acked == nil || m.Lost == nil || m.Dup == nil || len(m.Stored) != 3 || len(m.Cycles) != 3 {
		t.Fatalf("report JSON misses required fields: %s", buf.String())
	}
	for _, k := range []string{"failover_ms", "detect_ms", "elect_ms", "error_window_ms", "errors"} {
		if _, ok := m.Cycles[0][k]; !ok {
			t.Errorf("cycle JSON lacks %q", k)
		}
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "failover_ms") || !strings.Contains(table.String(), "OK") {
		t.Errorf("table:\n%s", table.String())
	}
}

func TestRunFailoverDrillLostRows(t *testing.T) {
	f := newFakeCluster(t, 3)
	f.lose = 7
	cfg := fastDrill(f, 0)
	cfg.StepTimeout = 500 * time.Millisecond
	rep, err := RunFailoverDrill(t.Context(), cfg)
	if err != nil {
		t.Fatalf("a count mismatch is a verdict, not an error: got %v", err)
	}
	if rep.OK() || rep.LostRows != 7 || rep.DuplicateRows != 0 {
		t.Errorf("got ok=%v lost=%d dup=%d, want not ok, 7 lost, 0 dup", rep.OK(), rep.LostRows, rep.DuplicateRows)
	}
}

// TestRunFailoverDrillTrackingMismatch: a node whose object journeys
// differ from the others' fails the drill, with examples.
func TestRunFailoverDrillTrackingMismatch(t *testing.T) {
	f := newFakeCluster(t, 3)
	f.trackSkew = "n2"
	rep, err := RunFailoverDrill(t.Context(), fastDrill(f, 0))
	if err != nil {
		t.Fatalf("a tracking mismatch is a verdict, not an error: got %v", err)
	}
	if rep.OK() || rep.LostRows != 0 || rep.TrackedObjects == 0 || rep.TrackingMismatches != rep.TrackedObjects {
		t.Errorf("got ok=%v lost=%d tracked=%d mismatches=%d, want not ok, 0 lost, every object a mismatch",
			rep.OK(), rep.LostRows, rep.TrackedObjects, rep.TrackingMismatches)
	}
	found := false
	for _, e := range rep.ErrorSamples {
		found = found || strings.Contains(e, "tracking: ") && strings.Contains(e, "n2")
	}
	if !found {
		t.Errorf("error samples name no tracking mismatch on n2: %q", rep.ErrorSamples)
	}
}

// noKill is a Controller that cannot kill.
type noKill struct{ *fakeCluster }

func (noKill) CanKill() error { return ErrCannotKill }

func TestRunFailoverDrillRefusesKillsWithoutControl(t *testing.T) {
	f := newFakeCluster(t, 3)
	_, err := RunFailoverDrill(t.Context(), DrillConfig{Controller: noKill{f}, Cycles: 2})
	if !errors.Is(err, ErrCannotKill) {
		t.Fatalf("got %v, want ErrCannotKill", err)
	}
	// Cycles 0 is the measuring mode and works.
	cfg := fastDrill(f, 0)
	cfg.Controller = noKill{f}
	rep, err := RunFailoverDrill(t.Context(), cfg)
	if err != nil || !rep.OK() {
		t.Fatalf("steady mode: got %v, ok=%v", err, rep != nil && rep.OK())
	}
}

func TestReportFinish(t *testing.T) {
	tests := []struct {
		name      string
		acked     int64
		stored    map[string]int64
		lost, dup int64
	}{
		{"exact", 100, map[string]int64{"n1": 100, "n2": 100}, 0, 0},
		{"lost on one", 100, map[string]int64{"n1": 100, "n2": 90}, 10, 0},
		{"dup on one", 100, map[string]int64{"n1": 103, "n2": 100}, 0, 3},
		{"both", 100, map[string]int64{"n1": 103, "n2": 95}, 5, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &DrillReport{Nodes: len(tc.stored), AckedRows: tc.acked, StoredRows: tc.stored,
				Cycles: []DrillCycle{{FailoverMS: 300}, {FailoverMS: 100}, {FailoverMS: -1}, {FailoverMS: 200}}}
			r.finish()
			if r.LostRows != tc.lost || r.DuplicateRows != tc.dup {
				t.Errorf("got lost %d dup %d, want %d %d", r.LostRows, r.DuplicateRows, tc.lost, tc.dup)
			}
			if s := r.Summary["failover_ms"]; s.Median != 200 || s.Worst != 300 {
				t.Errorf("failover summary: got %+v, want median 200 worst 300", s)
			}
		})
	}
}

func TestDrillRowsUnique(t *testing.T) {
	seen := map[string]bool{}
	var rows []Row
	for n := range int64(30) {
		rows = drillRows(rows, n, 97)
		for _, r := range rows {
			k := fmt.Sprintf("%d/%d/%s", r.Product, r.Market, r.Period())
			if seen[k] {
				t.Fatalf("row %d repeats (series, period) %s", r.ID, k)
			}
			seen[k] = true
		}
	}
}
