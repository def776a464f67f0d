package main

// demandflow drill failover: the command and the cluster controllers the
// drill in package bench runs against.
//
// localCluster starts N node processes of this very binary on 127.0.0.1 with
// OS-chosen ports in a temp dir (one data dir per node, kept across its
// restarts), kills them with SIGKILL and restarts them on the same ports
// when it can (else on new ones: a node may come back at a new address).
// attachCluster points the drill at a cluster someone else runs: it kills
// and restarts nodes through the operator's --kill-cmd/--restart-cmd, and
// without them only --cycles 0 (steady ingest + row check) is possible.

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/demandflow/demandflow/bench"
)

// drillAddrs is <data-dir>/addrs.json.
type drillAddrs struct {
	HTTP        string `json:"http"`
	HTTP3       string `json:"http3"`
	Raft        string `json:"raft"`
	Gossip      string `json:"gossip"`
	TLS         bool   `json:"tls"`
	Fingerprint string `json:"fingerprint"`
}

// localCluster runs node processes of one binary on loopback. It
// implements bench.Controller and is safe for concurrent use.
type localCluster struct {
	bin      string
	dir      string
	key      string   // --cluster-key, "" if the binary has no such flag
	args     []string // extra node flags
	logLevel string
	startTO  time.Duration

	mu    sync.Mutex
	nodes []*localProc
}

// localProc is one node: its data dir persists, its process comes and goes.
type localProc struct {
	name    string
	dir     string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	up      bool
	addrs   drillAddrs
}

// localClusterConfig configures startLocalCluster.
type localClusterConfig struct {
	Bin      string   // binary to run ("node" subcommand); default this one
	Dir      string   // parent of the node dirs; default a new temp dir
	Nodes    int      // default 3
	Args     []string // extra flags for every node
	LogLevel string   // default "info"
	// StartTimeout bounds the wait for a node's addrs.json and /healthz.
	// Default 30s.
	StartTimeout time.Duration
}

// startLocalCluster starts n1 (bootstrap-expect N), reads its gossip
// address and starts the others joining it, then returns without waiting
// for a leader. On error every started process is killed.
func startLocalCluster(ctx context.Context, cfg localClusterConfig) (*localCluster, error) {
	if cfg.Bin == "" {
		exe, err := os.Executable()
		if err != nil {
			exe = os.Args[0]
		}
		cfg.Bin = exe
	}
	if cfg.Nodes <= 0 {
		cfg.Nodes = 3
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "info"
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "demandflow-drill-")
		if err != nil {
			return nil, err
		}
		cfg.Dir = d
	}
	lc := &localCluster{bin: cfg.Bin, dir: cfg.Dir, args: cfg.Args, logLevel: cfg.LogLevel, startTO: cfg.StartTimeout}
	if help, err := exec.CommandContext(ctx, cfg.Bin, "node", "--help").CombinedOutput(); err == nil && bytes.Contains(help, []byte("--cluster-key")) {
		var k [32]byte
		_, _ = crand.Read(k[:])
		lc.key = base64.StdEncoding.EncodeToString(k[:])
	}
	for i := range cfg.Nodes {
		p := &localProc{name: fmt.Sprintf("n%d", i+1), dir: filepath.Join(cfg.Dir, fmt.Sprintf("n%d", i+1))}
		p.logPath = filepath.Join(cfg.Dir, p.name+".log")
		if err := os.MkdirAll(p.dir, 0o700); err != nil {
			return nil, err
		}
		lc.nodes = append(lc.nodes, p)
	}
	for i, p := range lc.nodes {
		var join []string
		if i > 0 {
			join = []string{lc.nodes[0].addrs.Gossip}
		}
		if err := lc.start(ctx, p, nil, join, cfg.Nodes); err != nil {
			lc.Close()
			return nil, err
		}
	}
	return lc, nil
}

// start runs p's process with ports (nil: all :0) and waits for its
// addrs.json and /healthz.
func (lc *localCluster) start(ctx context.Context, p *localProc, ports *drillAddrs, join []string, expect int) error {
	_ = os.Remove(filepath.Join(p.dir, "addrs.json"))
	httpA, raftA, gossipA := "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	http3A := ""
	if ports != nil {
		httpA, raftA, gossipA = ports.HTTP, ports.Raft, ports.Gossip
		if ports.HTTP3 != "" && ports.HTTP3 != ports.HTTP {
			http3A = ports.HTTP3
		}
	}
	args := []string{"node", "--data-dir", p.dir, "--node-name", p.name,
		"--http-addr", httpA, "--raft-addr", raftA, "--gossip-addr", gossipA,
		"--bootstrap-expect", fmt.Sprint(expect), "--log-level", lc.logLevel}
	if http3A != "" {
		args = append(args, "--http3-addr", http3A)
	}
	if len(join) > 0 {
		args = append(args, "--join", strings.Join(join, ","))
	}
	if lc.key != "" {
		args = append(args, "--cluster-key", lc.key)
	}
	args = append(args, lc.args...)
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "\n=== %s start %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
	// Not CommandContext: the drill's ctx ending must not SIGKILL the
	// nodes behind Close's back.
	cmd := exec.Command(lc.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	lc.mu.Lock()
	p.cmd, p.exited, p.up = cmd, exited, false
	lc.mu.Unlock()

	deadline := time.Now().Add(lc.startTO)
	for {
		select {
		case <-exited:
			return fmt.Errorf("node %s exited at start (%v); log %s:\n%s", p.name, cmd.ProcessState, p.logPath, logTail(p.logPath, 20))
		case <-ctx.Done():
			lc.kill(p)
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		var a drillAddrs
		b, err := os.ReadFile(filepath.Join(p.dir, "addrs.json"))
		if err == nil && json.Unmarshal(b, &a) == nil && a.HTTP != "" {
			if resp, err := http.Get("http://" + a.HTTP + "/healthz"); err == nil {
				resp.Body.Close()
				lc.mu.Lock()
				p.addrs, p.up = a, true
				lc.mu.Unlock()
				return nil
			}
		}
		if time.Now().After(deadline) {
			lc.kill(p)
			return fmt.Errorf("node %s did not come up within %v; log %s:\n%s", p.name, lc.startTO, p.logPath, logTail(p.logPath, 20))
		}
	}
}

// Nodes implements bench.Controller.
func (lc *localCluster) Nodes() []bench.DrillNode {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	out := make([]bench.DrillNode, len(lc.nodes))
	for i, p := range lc.nodes {
		out[i].Name = p.name
		if p.up {
			out[i].URL = "http://" + p.addrs.HTTP
		}
	}
	return out
}

func (lc *localCluster) node(name string) (*localProc, error) {
	for _, p := range lc.nodes {
		if p.name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no node %q", name)
}

// Kill implements bench.Controller: SIGKILL and wait.
func (lc *localCluster) Kill(ctx context.Context, name string) error {
	p, err := lc.node(name)
	if err != nil {
		return err
	}
	lc.kill(p)
	return nil
}

func (lc *localCluster) kill(p *localProc) {
	lc.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.up = false
	lc.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// Restart implements bench.Controller: the same data dir, the same ports
// if they can be bound again, else new ones; it joins the nodes that are
// up.
func (lc *localCluster) Restart(ctx context.Context, name string) error {
	p, err := lc.node(name)
	if err != nil {
		return err
	}
	lc.mu.Lock()
	if p.up {
		lc.mu.Unlock()
		return fmt.Errorf("node %s is running", name)
	}
	old := p.addrs
	var join []string
	for _, q := range lc.nodes {
		if q != p && q.up {
			join = append(join, q.addrs.Gossip)
		}
	}
	n := len(lc.nodes)
	lc.mu.Unlock()
	err = lc.start(ctx, p, &old, join, n)
	if err == nil || ctx.Err() != nil {
		return err
	}
	// The old ports may be taken: come back at a new address.
	if err2 := lc.start(ctx, p, nil, join, n); err2 != nil {
		return fmt.Errorf("%w; on new ports: %w", err, err2)
	}
	return nil
}

// Close stops every running node (SIGTERM, then SIGKILL after 10s).
func (lc *localCluster) Close() {
	var wg sync.WaitGroup
	for _, p := range lc.nodes {
		lc.mu.Lock()
		cmd, exited := p.cmd, p.exited
		p.up = false
		lc.mu.Unlock()
		if cmd == nil {
			continue
		}
		wg.Go(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
	}
	wg.Wait()
}

// logTail returns the last n lines of a file.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// attachCluster is a bench.Controller over nodes run by someone else. It
// can kill and restart them only through operator-given shell commands
// (--kill-cmd, --restart-cmd), e.g. `ssh {node} sudo systemctl kill -s
// KILL demandflow` and `ssh {node} sudo systemctl start demandflow`.
type attachCluster struct {
	nodes      []bench.DrillNode
	killCmd    string
	restartCmd string
	hc         *http.Client
	token      string
	// waitTO bounds the wait for a killed node to stop answering and for
	// a restarted one to answer again.
	waitTO time.Duration
}

// errAttachKill explains why attach mode without commands has no kill cycles.
var errAttachKill = fmt.Errorf("%w: with --attach the drill does not own the node processes, so it cannot SIGKILL or restart them by itself; give --kill-cmd and --restart-cmd (shell commands; {node} is the node name, {url} its base URL), or run `demandflow drill failover --attach ... --cycles 0` while you kill nodes from outside (it measures steady ingest and checks every acked row is stored once), or drop --attach to let the drill start its own local cluster", bench.ErrCannotKill)

func newAttachCluster(ctx context.Context, addrs []string, o *drillOpts) (*attachCluster, error) {
	ac := &attachCluster{killCmd: o.killCmd, restartCmd: o.restartCmd, token: o.token,
		hc: &http.Client{Timeout: 5 * time.Second}, waitTO: o.stepTimeout}
	if ac.waitTO <= 0 {
		ac.waitTO = time.Minute
	}
	for i, a := range addrs {
		a = strings.TrimRight(strings.TrimSpace(a), "/")
		if !strings.Contains(a, "://") {
			a = "http://" + a
		}
		name := fmt.Sprintf("node%d", i+1)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a+"/v1/cluster/raft", nil)
		if o.token != "" {
			req.Header.Set("Authorization", "Bearer "+o.token)
		}
		resp, err := ac.hc.Do(req)
		if err != nil {
			return nil, connError(a, err)
		}
		var r struct {
			Node string `json:"node"`
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && json.Unmarshal(b, &r) == nil && r.Node != "" {
			name = r.Node
		}
		ac.nodes = append(ac.nodes, bench.DrillNode{Name: name, URL: a})
	}
	return ac, nil
}

func (ac *attachCluster) Nodes() []bench.DrillNode {
	return append([]bench.DrillNode(nil), ac.nodes...)
}

// Kill runs --kill-cmd for the node and waits until its API stops
// answering (the process is gone).
func (ac *attachCluster) Kill(ctx context.Context, name string) error {
	return ac.act(ctx, "kill", ac.killCmd, name, false)
}

// Restart runs --restart-cmd for the node and waits until its API answers.
func (ac *attachCluster) Restart(ctx context.Context, name string) error {
	return ac.act(ctx, "restart", ac.restartCmd, name, true)
}

// act runs the operator's command tmpl for node name and waits until the
// node's API answers (up) or stops answering (!up).
func (ac *attachCluster) act(ctx context.Context, what, tmpl, name string, up bool) error {
	if err := ac.CanKill(); err != nil {
		return err
	}
	n, err := ac.node(name)
	if err != nil {
		return err
	}
	if err := ac.run(ctx, what, tmpl, n); err != nil {
		return err
	}
	return ac.waitHealth(ctx, n, up)
}

// CanKill tells bench.RunFailoverDrill whether kill cycles are possible:
// only with both --kill-cmd and --restart-cmd.
func (ac *attachCluster) CanKill() error {
	if ac.killCmd == "" || ac.restartCmd == "" {
		return errAttachKill
	}
	return nil
}

func (ac *attachCluster) node(name string) (bench.DrillNode, error) {
	for _, n := range ac.nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return bench.DrillNode{}, fmt.Errorf("attach: no node named %q", name)
}

// expandNodeCmd fills {node} and {url} in an operator's command template.
func expandNodeCmd(tmpl string, n bench.DrillNode) string {
	return strings.NewReplacer("{node}", n.Name, "{url}", n.URL).Replace(tmpl)
}

// run runs one operator command with sh -c; a non-zero exit is an error
// that carries the command's output.
func (ac *attachCluster) run(ctx context.Context, what, tmpl string, n bench.DrillNode) error {
	line := expandNodeCmd(tmpl, n)
	cctx, cancel := context.WithTimeout(ctx, ac.waitTO)
	defer cancel()
	out, err := exec.CommandContext(cctx, "sh", "-c", line).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: `%s`: %v: %s", what, n.Name, line, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// waitHealth polls the node's /healthz until it answers (up) or stops
// answering (!up).
func (ac *attachCluster) waitHealth(ctx context.Context, n bench.DrillNode, up bool) error {
	deadline := time.Now().Add(ac.waitTO)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+"/healthz", nil)
		resp, err := ac.hc.Do(req)
		answered := err == nil
		if resp != nil {
			resp.Body.Close()
		}
		if answered == up {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			if up {
				return fmt.Errorf("%s did not answer at %s within %v of the restart command", n.Name, n.URL, ac.waitTO)
			}
			return fmt.Errorf("%s still answers at %s %v after the kill command", n.Name, n.URL, ac.waitTO)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type drillOpts struct {
	nodes       int
	cycles      int
	attach      string
	jsonFile    string
	rate        float64
	batch       int
	dataset     string
	duration    time.Duration
	stepTimeout time.Duration
	keep        bool
	logLevel    string
	nodeArgs    []string
	token       string
	quiet       bool
	killCmd     string
	restartCmd  string
}

func newDrillCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "drill", Short: "Fault drills against a cluster (failover)"}
	o := &drillOpts{}
	fo := &cobra.Command{
		Use:   "failover [--nodes 3] [--cycles N] [--attach URL,...] [--json FILE]",
		Short: "Kill the Raft leader N times under steady ingest; measure failover; check no acked row is lost or duplicated and every node tracks it alike",
		Long: `Failover starts a local cluster of --nodes processes of this binary on
127.0.0.1 (OS-chosen ports, data in a temp dir, logs in <dir>/nK.log), keeps
a writer ingesting batches of --batch rows at --rate rows/s (every batch
retried with its Idempotency-Key until acked), and per cycle: finds the
leader, SIGKILLs it, measures

  detect_ms        kill -> a survivor sees the old leader dead/suspect or no leader
  elect_ms         kill -> a survivor reports a new leader
  failover_ms      kill -> first ack of a write sent after the kill
  error_window_ms  first failed write after the kill -> first ack after it

then restarts the killed node on its data dir (same ports if free) and
waits until it is ready and caught up. At the end every node's stored row
count is compared with the acked rows (lost_rows, duplicate_rows), and 64
acked rows spread over the run are looked up by object id on every node:
each must have exactly one accepted apply event and the same journey on
every node (tracked_objects, tracking_mismatches).

--attach URL,... drills a cluster run elsewhere. The drill does not own
those processes: give --kill-cmd and --restart-cmd, shell commands run
with sh -c in which {node} is the node's name and {url} its base URL, e.g.

  --kill-cmd 'ssh {node} sudo systemctl kill -s KILL demandflow'
  --restart-cmd 'ssh {node} sudo systemctl start demandflow'

After the kill command the drill waits until the node stops answering,
after the restart command until it answers again. Without them it refuses
--cycles > 0; with --cycles 0 it ingests for --duration and checks the row
counts (kill nodes from outside meanwhile).

Exit codes: 0 ok; 1 the drill could not complete; 2 rows were lost or
duplicated.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDrillFailover(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := fo.Flags()
	f.IntVar(&o.nodes, "nodes", 3, "nodes of the local cluster")
	f.IntVar(&o.cycles, "cycles", 5, "kill/restart cycles")
	f.StringVar(&o.attach, "attach", "", "comma-separated base URLs of an externally run cluster (no kills: --cycles 0 only)")
	f.StringVar(&o.jsonFile, "json", "", "write the report JSON to this file (directories are created)")
	f.Float64Var(&o.rate, "rate", 5000, "offered ingest load in rows/s (negative: back to back)")
	f.IntVar(&o.batch, "batch", 500, "rows per write")
	f.StringVar(&o.dataset, "dataset", "", "dataset to write (created if missing; default drill-<unix time>)")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "steady ingest time with --cycles 0")
	f.DurationVar(&o.stepTimeout, "step-timeout", 60*time.Second, "time limit of each wait (ready, election, rejoin, convergence)")
	f.BoolVar(&o.keep, "keep", false, "keep the local cluster's data and logs (always kept when the drill fails)")
	f.StringVar(&o.logLevel, "log-level", "info", "log level of the local nodes")
	f.StringArrayVar(&o.nodeArgs, "node-arg", nil, "extra flag for every local node, repeatable (--node-arg=--tls-disable)")
	f.StringVar(&o.token, "token", os.Getenv("DEMANDFLOW_TOKEN"), "API key (env DEMANDFLOW_TOKEN)")
	f.BoolVar(&o.quiet, "quiet", false, "no progress lines on stderr")
	f.StringVar(&o.killCmd, "kill-cmd", "", "with --attach: shell command that crashes a node ({node}: name, {url}: base URL)")
	f.StringVar(&o.restartCmd, "restart-cmd", "", "with --attach: shell command that starts a killed node again ({node}, {url})")
	cmd.AddCommand(fo)
	return cmd
}

func runDrillFailover(ctx context.Context, o *drillOpts, stdout, stderr io.Writer) error {
	logf := func(format string, args ...any) {
		if !o.quiet {
			fmt.Fprintf(stderr, "drill: "+format+"\n", args...)
		}
	}
	var ctl bench.Controller
	var lc *localCluster
	if o.attach != "" {
		if o.cycles > 0 && (o.killCmd == "" || o.restartCmd == "") {
			return exitError{code: 1, msg: fmt.Sprintf("drill failover: --cycles %d: %v", o.cycles, errAttachKill)}
		}
		ac, err := newAttachCluster(ctx, strings.Split(o.attach, ","), o)
		if err != nil {
			return err
		}
		ctl = ac
	} else if o.killCmd != "" || o.restartCmd != "" {
		return exitError{code: 1, msg: "drill failover: --kill-cmd and --restart-cmd apply only with --attach (a local cluster is killed and restarted by the drill itself)"}
	} else {
		if o.nodes < 3 && o.cycles > 0 {
			return fmt.Errorf("drill failover: --nodes %d: a leader kill needs at least 3 nodes to keep a quorum", o.nodes)
		}
		logf("starting %d local nodes", o.nodes)
		var err error
		lc, err = startLocalCluster(ctx, localClusterConfig{Nodes: o.nodes, Args: o.nodeArgs, LogLevel: o.logLevel})
		if err != nil {
			return fmt.Errorf("drill failover: %w", err)
		}
		logf("cluster dir %s", lc.dir)
		ctl = lc
	}
	rep, runErr := bench.RunFailoverDrill(ctx, bench.DrillConfig{Controller: ctl, Cycles: o.cycles, Duration: o.duration,
		Dataset: o.dataset, Batch: o.batch, Rate: o.rate, Token: o.token, StepTimeout: o.stepTimeout, Logf: logf})
	failed := runErr != nil || rep == nil || !rep.OK()
	if lc != nil {
		lc.Close()
		if o.keep || failed {
			logf("kept data and logs in %s", lc.dir)
		} else {
			_ = os.RemoveAll(lc.dir)
		}
	}
	if rep != nil {
		if err := rep.WriteTable(stdout); err != nil {
			return err
		}
		if o.jsonFile != "" {
			if err := writeReportFile(o.jsonFile, rep); err != nil {
				return err
			}
			logf("report written to %s", o.jsonFile)
		}
	}
	if runErr != nil {
		return fmt.Errorf("drill failover: %w", runErr)
	}
	if !rep.OK() {
		return exitError{code: 2, msg: fmt.Sprintf("drill failover: %d rows lost, %d duplicated (acked %d, stored %v)",
			rep.LostRows, rep.DuplicateRows, rep.AckedRows, rep.StoredRows)}
	}
	return nil
}

func writeReportFile(path string, rep *bench.DrillReport) error {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// errIsExit reports whether err carries an exit code (for tests).
func errIsExit(err error, code int) bool {
	var ee exitError
	return errors.As(err, &ee) && ee.code == code
}
