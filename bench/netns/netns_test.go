//go:build drill

package netns

import (
	"bytes"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	brNS    = "df-br"
	subnet  = "10.77.0."
	viewIP  = subnet + "254" // the drill's own address, in df-br
	dataset = "partition"
)

var (
	nodeNS  = []string{"df-n1", "df-n2", "df-n3"}
	binPath string

	procsMu sync.Mutex
	procs   []*exec.Cmd
)

func TestMain(m *testing.M) {
	binPath = os.Getenv("DEMANDFLOW_BIN")
	buildDir := ""
	if binPath == "" {
		var err error
		buildDir, err = os.MkdirTemp("", "demandflow-netns-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		binPath = filepath.Join(buildDir, "demandflow")
		if out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/demandflow").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build demandflow: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	// The trap: namespaces and node processes go away on a signal too.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		teardown()
		fmt.Fprintf(os.Stderr, "netns drill: %v: namespaces removed\n", s)
		os.Exit(1)
	}()
	code := m.Run()
	teardown()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// ip runs ip(8) with args.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// teardown kills the node processes this test started (by pid) and
// deletes the namespaces; safe to call more than once.
func teardown() {
	procsMu.Lock()
	for _, c := range procs {
		if c.Process != nil {
			_ = c.Process.Kill()
		}
	}
	procsMu.Unlock()
	for _, ns := range append(append([]string{}, nodeNS...), brNS) {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

// setup builds the namespaces: df-br holds bridge br0 (10.77.0.254/24), each
// df-nI a veth (10.77.0.I/24) whose peer veth-bI is a port of br0.
func setup() error {
	teardown() // leftovers of an earlier, killed run
	steps := [][]string{
		{"netns", "add", brNS},
		{"-n", brNS, "link", "set", "lo", "up"},
		{"-n", brNS, "link", "add", "br0", "type", "bridge"},
		{"-n", brNS, "addr", "add", viewIP + "/24", "dev", "br0"},
		{"-n", brNS, "link", "set", "br0", "up"},
	}
	for i, ns := range nodeNS {
		n := strconv.Itoa(i + 1)
		steps = append(steps,
			[]string{"netns", "add", ns},
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"-n", brNS, "link", "add", "veth-b" + n, "type", "veth", "peer", "name", "veth-n" + n, "netns", ns},
			[]string{"-n", brNS, "link", "set", "veth-b" + n, "master", "br0"},
			[]string{"-n", brNS, "link", "set", "veth-b" + n, "up"},
			[]string{"-n", ns, "addr", "add", subnet + n + "/24", "dev", "veth-n" + n},
			[]string{"-n", ns, "link", "set", "veth-n" + n, "up"},
		)
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	return nil
}

// curl runs one HTTP request from inside ns and returns status and body;
// status 0 means no response (connection error or timeout).
func curl(ns, method, url string, body []byte, key string, timeout time.Duration) (int, []byte) {
	args := []string{"netns", "exec", ns, "curl", "-sS", "-m", fmt.Sprintf("%.1f", timeout.Seconds()), "-X", method,
		"-w", "\n%{http_code}"}
	if strings.HasSuffix(url, "/records") {
		args = append(args, "-H", "Content-Type: application/x-ndjson")
	} else {
		args = append(args, "-H", "Content-Type: application/json")
	}
	if key != "" {
		args = append(args, "-H", "Idempotency-Key: "+key)
	}
	if body != nil {
		args = append(args, "--data-binary", "@-")
	}
	args = append(args, url)
	cmd := exec.Command("ip", args...)
	if body != nil {
		cmd.Stdin = bytes.NewReader(body)
	}
	out, _ := cmd.Output()
	i := bytes.LastIndexByte(out, '\n')
	if i < 0 {
		return 0, out
	}
	st, _ := strconv.Atoi(string(bytes.TrimSpace(out[i+1:])))
	return st, out[:i]
}

func nodeURL(i int) string { return "http://" + subnet + strconv.Itoa(i+1) + ":7070" }

type raftView struct {
	State  string `json:"state"`
	Leader struct {
		ID      string `json:"id"`
		Address string `json:"address"`
	} `json:"leader"`
	AppliedIndex uint64 `json:"applied_index"`
}

func raftOf(ns string, i int) (*raftView, error) {
	st, b := curl(ns, "GET", nodeURL(i)+"/v1/cluster/raft", nil, "", 2*time.Second)
	if st != 200 {
		return nil, fmt.Errorf("n%d raft: %d %s", i+1, st, b)
	}
	var r raftView
	return &r, json.Unmarshal(b, &r)
}

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
		time.Sleep(100 * time.Millisecond)
	}
}

// rows returns batch n of 100 rows, each its own (series, period).
func rows(n int) []byte {
	var b bytes.Buffer
	for k := range 100 {
		i := n*100 + k
		fmt.Fprintf(&b, `{"period":"%04d-%02d","product":"P%06d","market":"EU-DE","qty":%d}`+"\n", 2000+i%240/12, i%12+1, i/240, i%1000)
	}
	return b.Bytes()
}

func TestPartition(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("netns partition drill: needs root (ip netns, veth, bridge); skipped")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("netns partition drill: ip(8) not found; skipped")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("netns partition drill: curl not found; skipped")
	}
	if err := setup(); err != nil {
		teardown()
		t.Skipf("netns partition drill: cannot create network namespaces here (%v); skipped", err)
	}
	t.Cleanup(teardown)

	var key [32]byte
	_, _ = crand.Read(key[:])
	clusterKey := base64.StdEncoding.EncodeToString(key[:])
	dir := t.TempDir()
	for i, ns := range nodeNS {
		addr := subnet + strconv.Itoa(i+1)
		args := []string{"netns", "exec", ns, binPath, "node", "--data-dir", filepath.Join(dir, ns),
			"--node-name", fmt.Sprintf("n%d", i+1), "--http-addr", addr + ":7070",
			"--raft-addr", addr + ":7071", "--gossip-addr", addr + ":7072", "--bootstrap-expect", "3",
			"--cluster-key", clusterKey, "--tls-disable", "--log-level", "info"}
		if i > 0 {
			args = append(args, "--join", subnet+"1:7072")
		}
		logf, err := os.Create(filepath.Join(t.ArtifactDir(), fmt.Sprintf("n%d.log", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { logf.Close() })
		cmd := exec.Command("ip", args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procsMu.Lock()
		procs = append(procs, cmd)
		procsMu.Unlock()
		go func() { _ = cmd.Wait() }()
	}

	// Leader known by all, everyone ready.
	leader := -1
	waitUntil(t, 60*time.Second, "cluster formed", func() error {
		ids := map[string]bool{}
		for i := range nodeNS {
			if st, b := curl(brNS, "GET", nodeURL(i)+"/readyz", nil, "", 2*time.Second); st != 200 {
				return fmt.Errorf("n%d readyz: %d %s", i+1, st, b)
			}
			r, err := raftOf(brNS, i)
			if err != nil {
				return err
			}
			ids[r.Leader.ID] = true
			if r.State == "Leader" {
				leader = i
			}
		}
		if len(ids) != 1 || leader < 0 {
			return fmt.Errorf("no agreed leader: %v", ids)
		}
		return nil
	})
	L := leader
	maj := []int{}
	for i := range nodeNS {
		if i != L {
			maj = append(maj, i)
		}
	}
	t.Logf("leader n%d", L+1)

	schema := []byte(`{"name":"` + dataset + `","frequency":"month","period":"period","dimensions":["product","market"],"measure":"qty"}`)
	if st, b := curl(brNS, "POST", nodeURL(L)+"/v1/datasets", schema, "", 10*time.Second); st != 201 {
		t.Fatalf("create dataset: %d %s", st, b)
	}
	waitUntil(t, 20*time.Second, "dataset on every node", func() error {
		for i := range nodeNS {
			if st, b := curl(brNS, "GET", nodeURL(i)+"/v1/datasets/"+dataset, nil, "", 2*time.Second); st != 200 {
				return fmt.Errorf("n%d: %d %s", i+1, st, b)
			}
		}
		return nil
	})

	acked := map[string]int{}
	// write retries one batch (same key) through ns/nodes until acked.
	write := func(n int, nodes []int, timeout time.Duration) {
		t.Helper()
		key := fmt.Sprintf("part-%d", n)
		attempt := 0
		waitUntil(t, timeout, "ack of "+key, func() error {
			i := nodes[attempt%len(nodes)]
			attempt++
			st, b := curl(brNS, "POST", nodeURL(i)+"/v1/datasets/"+dataset+"/records", rows(n), key, 5*time.Second)
			if st != 200 {
				return fmt.Errorf("n%d: %d %s", i+1, st, b)
			}
			var r struct {
				Accepted int `json:"accepted"`
			}
			if err := json.Unmarshal(b, &r); err != nil {
				return err
			}
			if _, ok := acked[key]; !ok {
				acked[key] = r.Accepted
			}
			return nil
		})
	}
	batch := 0
	for ; batch < 5; batch++ {
		write(batch, []int{0, 1, 2}, 30*time.Second)
	}

	// Cut the leader off: its bridge port goes down; its own address keeps
	// answering inside its namespace.
	cut := time.Now()
	if err := ip("-n", brNS, "link", "set", fmt.Sprintf("veth-b%d", L+1), "down"); err != nil {
		t.Fatal(err)
	}
	t.Logf("n%d cut off", L+1)

	// The minority must not ack: a write to it fails or times out.
	minorityKey := fmt.Sprintf("part-%d", batch)
	minorityBatch := batch
	batch++
	st, b := curl(nodeNS[L], "POST", nodeURL(L)+"/v1/datasets/"+dataset+"/records", rows(minorityBatch), minorityKey, 8*time.Second)
	if st == 200 {
		t.Fatalf("the cut-off old leader acked a write: %s", b)
	}
	t.Logf("minority write refused after %v: status %d %s", time.Since(cut).Round(time.Millisecond), st, bytes.TrimSpace(b))
	waitUntil(t, 30*time.Second, "quorum_lost alarm on the minority", func() error {
		st, b := curl(nodeNS[L], "GET", nodeURL(L)+"/v1/alarms", nil, "", 2*time.Second)
		if st != 200 {
			return fmt.Errorf("alarms: %d %s", st, b)
		}
		var a struct {
			Local []struct {
				Kind string `json:"kind"`
			} `json:"local"`
		}
		if err := json.Unmarshal(b, &a); err != nil {
			return err
		}
		for _, x := range a.Local {
			if x.Kind == "quorum_lost" {
				return nil
			}
		}
		return fmt.Errorf("local alarms: %s", b)
	})

	// The majority elects and keeps acking.
	waitUntil(t, 30*time.Second, "new leader in the majority", func() error {
		for _, i := range maj {
			r, err := raftOf(brNS, i)
			if err != nil {
				return err
			}
			if r.State == "Leader" {
				return nil
			}
		}
		return errors.New("no majority node is leader")
	})
	t.Logf("majority elected %v after the cut", time.Since(cut).Round(time.Millisecond))
	for end := batch + 5; batch < end; batch++ {
		write(batch, maj, 30*time.Second)
	}

	// Heal, then settle the minority's unacked batch with its key, so the
	// expected count is exact whether or not it survived.
	if err := ip("-n", brNS, "link", "set", fmt.Sprintf("veth-b%d", L+1), "up"); err != nil {
		t.Fatal(err)
	}
	write(minorityBatch, maj, 30*time.Second)
	want := 0
	for _, n := range acked {
		want += n
	}
	waitUntil(t, 60*time.Second, "convergence after healing", func() error {
		var idx []uint64
		for i := range nodeNS {
			st, b := curl(brNS, "GET", nodeURL(i)+"/v1/datasets/"+dataset, nil, "", 2*time.Second)
			if st != 200 {
				return fmt.Errorf("n%d: %d %s", i+1, st, b)
			}
			var d struct {
				Dataset struct {
					RowsAccepted int `json:"rows_accepted"`
				} `json:"dataset"`
			}
			if err := json.Unmarshal(b, &d); err != nil {
				return err
			}
			if d.Dataset.RowsAccepted != want {
				return fmt.Errorf("n%d stores %d rows, %d acked", i+1, d.Dataset.RowsAccepted, want)
			}
			r, err := raftOf(brNS, i)
			if err != nil {
				return err
			}
			idx = append(idx, r.AppliedIndex)
		}
		if idx[0] != idx[1] || idx[1] != idx[2] {
			return fmt.Errorf("applied indexes differ: %v", idx)
		}
		return nil
	})
	t.Logf("converged: %d rows on every node, nothing acked lost", want)
}
