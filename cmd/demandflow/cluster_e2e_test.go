package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/demandflow/demandflow/bench"
	"github.com/demandflow/demandflow/client"
	"github.com/demandflow/demandflow/internal/sample"
)

// waitUntil polls f every 20ms until it returns nil or timeout passes; it
// fails the test with the last error then.
func waitUntil(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v: %v", what, timeout, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// e2eGet GETs base+path without retries and decodes the JSON into out.
func e2eGet(ctx context.Context, base, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// clusterLeader returns the leader's node name as the live nodes agree on
// it (every live node reports the same leader, which says it is Leader).
func clusterLeader(ctx context.Context, lc *localCluster) (string, error) {
	leader := ""
	for _, n := range lc.Nodes() {
		if n.URL == "" {
			continue
		}
		var r raftResp
		if err := e2eGet(ctx, n.URL, "/v1/cluster/raft", &r); err != nil {
			return "", fmt.Errorf("%s: %w", n.Name, err)
		}
		if r.Leader.ID == "" {
			return "", fmt.Errorf("%s knows no leader", n.Name)
		}
		id := r.Leader.ID
		if _, err := lc.node(id); err != nil {
			// The raft id is not the node name: map it by raft address.
			var m membersResp
			if err := e2eGet(ctx, n.URL, "/v1/cluster/members", &m); err != nil {
				return "", err
			}
			for _, x := range m.Members {
				if x.RaftAddr == r.Leader.Address {
					id = x.Name
				}
			}
		}
		if leader != "" && id != leader {
			return "", fmt.Errorf("nodes disagree on the leader: %s vs %s", leader, id)
		}
		leader = id
		if n.Name == id && r.State != "Leader" {
			return "", fmt.Errorf("%s is named leader but is %s", id, r.State)
		}
	}
	if leader == "" {
		return "", errors.New("no live node")
	}
	return leader, nil
}

func nodeURL(lc *localCluster, name string) string {
	for _, n := range lc.Nodes() {
		if n.Name == name {
			return n.URL
		}
	}
	return ""
}

// TestClusterFailover is the real 3-process test: form a cluster, ingest
// through a follower, SIGKILL the leader, keep ingesting through a survivor
// with the same idempotency keys on retries, restart the killed node and
// check that every acked row is on every node exactly once.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-process cluster; skipped with -short")
	}
	ctx := t.Context()
	start := time.Now()
	dir := t.TempDir()
	lc, err := startLocalCluster(ctx, localClusterConfig{Bin: binPath, Dir: dir, Nodes: 3, LogLevel: "info",
		Args: []string{"--tls-disable"}})
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		lc.Close()
		if t.Failed() {
			for _, p := range lc.nodes {
				t.Logf("--- %s log (tail):\n%s", p.name, logTail(p.logPath, 40))
			}
		}
		// Keep the node logs as test artifacts.
		art := t.ArtifactDir()
		for _, p := range lc.nodes {
			if b, err := os.ReadFile(p.logPath); err == nil {
				_ = os.WriteFile(filepath.Join(art, p.name+".log"), b, 0o644)
			}
		}
	})

	// 1. A leader, every node ready.
	var leader string
	waitUntil(t, 30*time.Second, "cluster formed", func() error {
		for _, n := range lc.Nodes() {
			if err := e2eGet(ctx, n.URL, "/readyz", nil); err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
		}
		var err error
		leader, err = clusterLeader(ctx, lc)
		return err
	})
	var follower, other string
	for _, n := range lc.Nodes() {
		switch {
		case n.Name == leader:
		case follower == "":
			follower = n.Name
		default:
			other = n.Name
		}
	}
	t.Logf("cluster formed in %v: leader %s, writing through follower %s", time.Since(start).Round(time.Millisecond), leader, follower)

	// 2. Dataset and rows: 25 products x 4 markets x 24 months, each row
	// its own (series, period).
	const products, markets, months, chunk = 25, 4, 24, 60
	rows, _ := (sample.Config{Products: products, Markets: markets, Months: months, BadRows: -1}).Rows()
	cl, err := client.New(client.Config{Addrs: []string{nodeURL(lc, follower), nodeURL(lc, other)},
		Timeout: 5 * time.Second, MaxRetries: 200, Backoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// The dataset is created through the leader: this test is about
	// ingest and failover. (Creating through a follower is a write like
	// any other and belongs to the node API tests.)
	lcl, err := client.New(client.Config{Addrs: []string{nodeURL(lc, leader)}, MaxRetries: 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lcl.CreateDataset(ctx, sample.Schema("exports")); err != nil {
		t.Fatalf("create dataset through %s: %v", leader, err)
	}
	// A follower learns of the dataset when it applies the entry; the ack
	// of the create only promises it will.
	for _, n := range lc.Nodes() {
		waitUntil(t, 10*time.Second, "dataset visible on "+n.Name, func() error {
			return e2eGet(ctx, n.URL, "/v1/datasets/exports", nil)
		})
	}
	acked := map[string]int{} // Idempotency-Key -> accepted, first ack
	send := func(i int) *client.IngestResult {
		t.Helper()
		var buf bytes.Buffer
		_ = sample.WriteNDJSON(&buf, sample.Header, rows[i:min(i+chunk, len(rows))])
		key := fmt.Sprintf("e2e-chunk-%d", i)
		res, err := cl.Ingest(ctx, "exports", client.ContentTypeNDJSON, buf.Bytes(), key)
		if err != nil {
			t.Fatalf("ingest %s: %v", key, err)
		}
		if _, ok := acked[key]; !ok {
			acked[key] = res.Accepted
		}
		return res
	}
	half := len(rows) / 2 / chunk * chunk
	for i := 0; i < half; i += chunk {
		send(i)
	}

	// 3. SIGKILL the leader; keep writing through the survivors.
	killAt := time.Now()
	if err := lc.Kill(ctx, leader); err != nil {
		t.Fatal(err)
	}
	for i := half; i < len(rows); i += chunk {
		send(i)
	}
	t.Logf("second half acked %v after the kill", time.Since(killAt).Round(time.Millisecond))
	// A retry of a batch acked before the crash is a replay, not new rows.
	if res := send(0); !res.Replayed {
		t.Errorf("resending chunk 0 after the failover: got replayed=false (%+v), want the first result", res)
	}
	var want int
	for _, n := range acked {
		want += n
	}
	if want != len(rows) {
		t.Fatalf("acked %d rows, want all %d (no row is invalid)", want, len(rows))
	}

	// 4. Restart the killed node on its data dir; it rejoins and catches up.
	if err := lc.Restart(ctx, leader); err != nil {
		t.Fatalf("restart %s: %v", leader, err)
	}
	waitUntil(t, 30*time.Second, "all nodes ready after the restart", func() error {
		for _, n := range lc.Nodes() {
			if err := e2eGet(ctx, n.URL, "/readyz", nil); err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
		}
		_, err := clusterLeader(ctx, lc)
		return err
	})

	// 5. Every node, from its local state: rows_accepted == acked, and
	// every series has all its months exactly once.
	for _, n := range lc.Nodes() {
		waitUntil(t, 20*time.Second, n.Name+" stores every acked row", func() error {
			var info struct {
				Dataset client.Dataset `json:"dataset"`
			}
			if err := e2eGet(ctx, n.URL, "/v1/datasets/exports?consistent=false", &info); err != nil {
				return err
			}
			if info.Dataset.RowsAccepted != int64(want) || info.Dataset.Series != products*markets {
				return fmt.Errorf("got %d rows in %d series, want %d rows in %d series",
					info.Dataset.RowsAccepted, info.Dataset.Series, want, products*markets)
			}
			return nil
		})
		nc, err := client.New(client.Config{Addrs: []string{n.URL}, MaxRetries: 3})
		if err != nil {
			t.Fatal(err)
		}
		series, cursor := 0, ""
		for {
			page, err := nc.Series(ctx, "exports", client.SeriesQuery{Limit: 1000, Cursor: cursor})
			if err != nil {
				t.Fatalf("%s: series: %v", n.Name, err)
			}
			for _, s := range page.Series {
				obs, err := nc.Observations(ctx, "exports", s.ID, client.ObservationsQuery{})
				if err != nil {
					t.Fatalf("%s: observations of %s: %v", n.Name, s.ID, err)
				}
				if len(obs.Observations) != months {
					t.Errorf("%s: series %s (%v): got %d observations, want %d", n.Name, s.ID, s.Dimensions, len(obs.Observations), months)
				}
				series++
			}
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		if series != products*markets {
			t.Errorf("%s: got %d series, want %d", n.Name, series, products*markets)
		}
	}
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}

// TestDrillAttachWithCommands runs one kill cycle of the drill in attach
// mode against a 3-process cluster the test owns: --kill-cmd and
// --restart-cmd reach the test's controller over HTTP (bash's /dev/tcp, so
// nothing but bash is needed), as an operator's ssh/systemctl commands
// would reach real hosts.
func TestDrillAttachWithCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-process cluster; skipped with -short")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found: the test's kill/restart commands use bash's /dev/tcp")
	}
	ctx := t.Context()
	lc, err := startLocalCluster(ctx, localClusterConfig{Bin: binPath, Dir: t.TempDir(), Nodes: 3, LogLevel: "warn",
		Args: []string{"--tls-disable"}})
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(lc.Close)
	var mu sync.Mutex
	var calls []string
	ctl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, name, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		mu.Lock()
		calls = append(calls, op+" "+name)
		mu.Unlock()
		var err error
		switch op {
		case "kill":
			err = lc.Kill(r.Context(), name)
		case "restart":
			err = lc.Restart(r.Context(), name)
		default:
			err = fmt.Errorf("unknown op %q", op)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(ctl.Close)
	port := ctl.Listener.Addr().(*net.TCPAddr).Port
	// A status line check makes a failed control call fail the command.
	cmdFor := func(op string) string {
		return fmt.Sprintf(`bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d; printf "GET /%s/{node} HTTP/1.0\r\n\r\n" >&3; head -1 <&3 | grep -q " 200 "'`, port, op)
	}
	var urls []string
	for _, n := range lc.Nodes() {
		urls = append(urls, n.URL)
	}
	jsonPath := filepath.Join(t.TempDir(), "drill.json")
	var out, errb bytes.Buffer
	err = runDrillFailover(ctx, &drillOpts{attach: strings.Join(urls, ","), cycles: 1, rate: 2000, batch: 100,
		stepTimeout: 30 * time.Second, jsonFile: jsonPath, quiet: true,
		killCmd: cmdFor("kill"), restartCmd: cmdFor("restart")}, &out, &errb)
	if err != nil {
		t.Fatalf("drill: %v\n%s\n%s", err, out.String(), errb.String())
	}
	var rep bench.DrillReport
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Cycles) != 1 || rep.AckedRows == 0 || rep.LostRows != 0 || rep.DuplicateRows != 0 {
		t.Fatalf("report: %d cycles, %d acked, %d lost, %d duplicated; want 1 cycle, rows acked, none lost or duplicated",
			len(rep.Cycles), rep.AckedRows, rep.LostRows, rep.DuplicateRows)
	}
	killed := rep.Cycles[0].Killed
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"kill " + killed, "restart " + killed}; !slices.Equal(calls, want) {
		t.Errorf("controller calls %q, want %q", calls, want)
	}
	for name, n := range rep.StoredRows {
		if n != rep.AckedRows {
			t.Errorf("%s stores %d rows, want %d", name, n, rep.AckedRows)
		}
	}
}

// TestDrillCommandAttachRefusesKills checks the attach-mode message
// without a cluster: the refusal comes before any connection.
func TestDrillCommandAttachRefusesKills(t *testing.T) {
	var out, errb bytes.Buffer
	err := runDrillFailover(t.Context(), &drillOpts{attach: "http://127.0.0.1:1", cycles: 2}, &out, &errb)
	if err == nil || !errIsExit(err, 1) || !strings.Contains(err.Error(), "cannot SIGKILL") {
		t.Fatalf("got %v, want exit 1 explaining attach mode cannot kill", err)
	}
}

var _ bench.Controller = (*localCluster)(nil)
var _ bench.Controller = (*attachCluster)(nil)
