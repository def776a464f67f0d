package bench

// Failover drill: RunFailoverDrill kills the Raft leader of a running
// cluster again and again under steady ingest and measures how long the
// cluster takes to notice, elect and take writes again, then checks that
// every acked row is stored on every node exactly once.
//
// # Cycle
//
//  1. wait until every node answers /readyz and a leader is known;
//  2. let the writer ack a few batches (steady state);
//  3. SIGKILL the leader (Controller.Kill) at time K;
//  4. poll the survivors every PollInterval:
//     detect_ms = K -> a survivor reports the old leader dead/suspect/left
//     in /v1/cluster/members, or its Raft state shows no leader (or another one);
//     elect_ms  = K -> a survivor reports a leader other than the old one;
//  5. failover_ms = K -> the first ack of a write SENT after K (an ack of a
//     request sent before K may be the old leader's last commit and says
//     nothing about recovery); error_window_ms = the first failed attempt
//     after K -> the first ack of a write sent after that failure;
//     errors = failed attempts in [K, first ack];
//  6. restart the killed node (same data dir) and wait until it answers
//     /readyz and its applied index reaches the leader's applied index at
//     the time it came up (rejoin_ms).
//
// # Rows and counting
//
// Batch n holds rows n*Batch .. (n+1)*Batch-1; row i is the one observation
// of series i/240 at month i%240, so every row is a distinct (series,
// period) and stored row counts are exact. Each batch has its own
// Idempotency-Key, reused on every retry until it is acked: the writer never
// gives up on a batch (a batch that was sent but never acked may or may not
// be stored, which would make the counts meaningless). acked_rows sums the
// accepted rows per key once. At the end, after every node has applied the
// leader's commit index, stored_rows is each node's local rows_accepted;
// lost_rows = acked - min(stored), duplicate_rows = max(stored) - acked
// (both clamped at 0). Then 64 acked rows, evenly spread, are looked up by
// object id ("b-<row>") on every node (checkTracking): tracked_objects
// counts them, tracking_mismatches those without exactly one accepted
// apply event or with journeys that differ between nodes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/demandflow/demandflow/client"
)

// DrillNode is one node of a drilled cluster as its Controller knows it.
type DrillNode struct {
	// Name is the node name (--node-name).
	Name string
	// URL is the base URL of its HTTP API ("http://127.0.0.1:7070"); it
	// may change across a restart. Empty while the node is down.
	URL string
}

// Controller starts and kills the nodes of the cluster a drill runs
// against. Implementations must be safe for concurrent use: the drill's
// writer goroutine calls Nodes while the drill kills and restarts.
type Controller interface {
	// Nodes returns every node of the cluster, down ones with URL "".
	Nodes() []DrillNode
	// Kill crashes the named node (SIGKILL: no graceful shutdown) and
	// returns once the process is gone.
	Kill(ctx context.Context, name string) error
	// Restart starts the named, killed node again on its data dir and
	// returns once its HTTP API answers (not necessarily ready).
	Restart(ctx context.Context, name string) error
}

// ErrCannotKill is returned by Controllers that cannot kill or restart
// nodes, such as one attached to an externally run cluster. Such a
// Controller should also have a method CanKill() error returning it, which
// RunFailoverDrill checks before it starts kill cycles.
var ErrCannotKill = errors.New("bench: this cluster controller cannot kill or restart nodes")

// DrillConfig configures RunFailoverDrill. A zero field means its default.
type DrillConfig struct {
	// Controller gives the nodes and kills/restarts them. Required.
	Controller Controller
	// Cycles is the number of kill/restart cycles. 0 runs only steady
	// ingest for Duration and the final count check (the mode for a
	// Controller that cannot kill).
	Cycles int
	// Duration is the steady-ingest time when Cycles is 0. Default 10s.
	Duration time.Duration
	// Dataset receives the rows; it is created if missing, with
	// Schema(Dataset). Default "drill-<unix seconds>".
	Dataset string
	// Batch is rows per write. Default 500.
	Batch int
	// Rate is the offered load in rows/s (batches are spaced Batch/Rate
	// apart; a late batch is sent at once). Default 5000; negative means
	// back to back.
	Rate float64
	// Transport and Token are used for every request (default: a clone of
	// http.DefaultTransport, no token).
	Transport http.RoundTripper
	Token     string
	// AttemptTimeout bounds one write attempt and PollTimeout one status
	// poll. Defaults 3s and 1s.
	AttemptTimeout time.Duration
	PollTimeout    time.Duration
	// RetryInterval is the pause between failed write attempts (each goes
	// to the next node). Default 20ms.
	RetryInterval time.Duration
	// PollInterval is the period of the survivor polls. Default 10ms.
	PollInterval time.Duration
	// StepTimeout bounds every wait (cluster ready, election, first ack,
	// rejoin, convergence). Default 60s.
	StepTimeout time.Duration
	// SettleAcks is the number of acks the writer must get in a cycle
	// before the leader is killed. Default 5.
	SettleAcks int
	// Logf, when set, gets one line per step.
	Logf func(format string, args ...any)
}

func (c DrillConfig) withDefaults() (DrillConfig, error) {
	if c.Controller == nil {
		return c, errors.New("bench: DrillConfig.Controller is required")
	}
	if c.Cycles < 0 {
		return c, fmt.Errorf("bench: cycles %d, want >= 0", c.Cycles)
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Dataset == "" {
		c.Dataset = fmt.Sprintf("drill-%d", time.Now().Unix())
	}
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.Rate == 0 {
		c.Rate = 5000
	}
	if c.Transport == nil {
		c.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = 3 * time.Second
	}
	if c.PollTimeout <= 0 {
		c.PollTimeout = time.Second
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 20 * time.Millisecond
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 10 * time.Millisecond
	}
	if c.StepTimeout <= 0 {
		c.StepTimeout = 60 * time.Second
	}
	if c.SettleAcks <= 0 {
		c.SettleAcks = 5
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c, nil
}

// raftState is the part of GET /v1/cluster/raft the drill reads.
type raftState struct {
	State  string `json:"state"`
	Leader struct {
		ID      string `json:"id"`
		Address string `json:"address"`
	} `json:"leader"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	Node         string `json:"node"`
}

// memberState is one member of GET /v1/cluster/members.
type memberState struct {
	Name     string `json:"name"`
	Status   string `json:"status"`
	RaftAddr string `json:"raft_addr"`
	Leader   bool   `json:"leader"`
}

// drill is one RunFailoverDrill run.
type drill struct {
	cfg DrillConfig

	mu      sync.Mutex
	clients map[string]*client.Client // by base URL, no retries
}

// cl returns the no-retry client of base with attempt timeout d.
func (d *drill) cl(base string, timeout time.Duration) *client.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := base + "|" + timeout.String()
	if c, ok := d.clients[key]; ok {
		return c
	}
	c, err := client.New(client.Config{Addrs: []string{base}, Transport: d.cfg.Transport, Token: d.cfg.Token,
		Timeout: timeout, MaxRetries: -1})
	if err != nil {
		// base came from a Controller; a malformed one is a programmer bug.
		panic(fmt.Sprintf("bench: node URL %q: %v", base, err))
	}
	d.clients[key] = c
	return c
}

func (d *drill) getJSON(ctx context.Context, base, path string, q url.Values, out any) error {
	raw, err := d.cl(base, d.cfg.PollTimeout).Get(ctx, path, q)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

func (d *drill) raft(ctx context.Context, base string) (*raftState, error) {
	var r raftState
	return &r, d.getJSON(ctx, base, "/v1/cluster/raft", nil, &r)
}

func (d *drill) members(ctx context.Context, base string) ([]memberState, error) {
	var r struct {
		Members []memberState `json:"members"`
	}
	return r.Members, d.getJSON(ctx, base, "/v1/cluster/members", nil, &r)
}

// ready reports whether base answers /readyz with a 2xx.
func (d *drill) ready(ctx context.Context, base string) bool {
	_, err := d.cl(base, d.cfg.PollTimeout).Get(ctx, "/readyz", nil)
	return err == nil
}

// waitFor polls f every PollInterval until it returns nil, the step times
// out (the last error is returned) or ctx ends.
func (d *drill) waitFor(ctx context.Context, what string, f func() error) error {
	deadline := time.Now().Add(d.cfg.StepTimeout)
	t := time.NewTicker(d.cfg.PollInterval)
	defer t.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not done after %v: %w", what, d.cfg.StepTimeout, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}

// leader is the current leader as the cluster reports it.
type leader struct {
	name     string // node name (Controller's)
	url      string
	raftAddr string
	raftID   string
	applied  uint64
	commit   uint64
}

// findLeader asks the live nodes for the leader and maps it to a node of
// the Controller; it fails while no leader is known or it is not among the
// live nodes.
func (d *drill) findLeader(ctx context.Context) (*leader, error) {
	var lastErr error = errors.New("no live node")
	nodes := d.cfg.Controller.Nodes()
	for _, n := range nodes {
		if n.URL == "" {
			continue
		}
		r, err := d.raft(ctx, n.URL)
		if err != nil {
			lastErr = fmt.Errorf("%s: %w", n.Name, err)
			continue
		}
		if r.Leader.ID == "" {
			lastErr = fmt.Errorf("%s knows no leader", n.Name)
			continue
		}
		name := d.nameOf(ctx, n.URL, r.Leader.ID, r.Leader.Address, nodes)
		for _, m := range nodes {
			if m.Name == name && m.URL != "" {
				lr, err := d.raft(ctx, m.URL)
				if err != nil {
					lastErr = fmt.Errorf("leader %s: %w", name, err)
					break
				}
				if lr.State != "Leader" {
					lastErr = fmt.Errorf("%s says %s leads, which is %s", n.Name, name, lr.State)
					break
				}
				return &leader{name: name, url: m.URL, raftAddr: r.Leader.Address, raftID: r.Leader.ID,
					applied: lr.AppliedIndex, commit: lr.CommitIndex}, nil
			}
		}
		if lastErr == nil || !strings.HasPrefix(lastErr.Error(), "leader") {
			lastErr = fmt.Errorf("%s reports leader %q (%s), not a live node", n.Name, r.Leader.ID, r.Leader.Address)
		}
	}
	return nil, lastErr
}

// nameOf maps a Raft server id/address to a node name: the id when it is a
// node name, else the member whose raft_addr is the address.
func (d *drill) nameOf(ctx context.Context, base, id, addr string, nodes []DrillNode) string {
	for _, n := range nodes {
		if n.Name == id {
			return id
		}
	}
	if ms, err := d.members(ctx, base); err == nil {
		for _, m := range ms {
			if m.RaftAddr == addr && addr != "" {
				return m.Name
			}
		}
	}
	return id
}

// waitClusterReady waits until every node that is up answers /readyz and
// a leader is known.
func (d *drill) waitClusterReady(ctx context.Context) (*leader, error) {
	var l *leader
	err := d.waitFor(ctx, "cluster ready", func() error {
		for _, n := range d.cfg.Controller.Nodes() {
			if n.URL == "" {
				return fmt.Errorf("node %s is down", n.Name)
			}
			if !d.ready(ctx, n.URL) {
				return fmt.Errorf("node %s is not ready", n.Name)
			}
		}
		var err error
		l, err = d.findLeader(ctx)
		return err
	})
	return l, err
}

// RunFailoverDrill runs the drill described in the file comment against
// cfg.Controller's cluster and returns its report. It returns an error
// (and the report so far, possibly nil) when a step could not complete; a
// completed drill that lost or duplicated rows is not an error: check
// Report.OK.
func RunFailoverDrill(ctx context.Context, cfg DrillConfig) (*DrillReport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	nodes := cfg.Controller.Nodes()
	if len(nodes) == 0 {
		return nil, errors.New("bench: the controller has no nodes")
	}
	if cfg.Cycles > 0 {
		if kc, ok := cfg.Controller.(interface{ CanKill() error }); ok {
			if err := kc.CanKill(); err != nil {
				return nil, fmt.Errorf("bench: %d kill cycles requested, but %w", cfg.Cycles, err)
			}
		}
	}
	d := &drill{cfg: cfg, clients: map[string]*client.Client{}}
	rep := &DrillReport{Kind: "failover", Started: time.Now().UTC(), Nodes: len(nodes), Dataset: cfg.Dataset,
		Batch: cfg.Batch, Rate: max(cfg.Rate, 0), Cycles: []DrillCycle{}, StoredRows: map[string]int64{}}

	cfg.Logf("waiting for %d nodes to be ready", len(nodes))
	l, err := d.waitClusterReady(ctx)
	if err != nil {
		return rep, err
	}
	// Create through the leader, then wait until every node has applied
	// it: a node validates ingest against its local copy of the schema.
	setup, err := client.New(client.Config{Addrs: []string{l.url}, Transport: cfg.Transport, Token: cfg.Token, MaxRetries: 20})
	if err != nil {
		return rep, err
	}
	if _, err := setup.CreateDataset(ctx, Schema(cfg.Dataset)); err != nil {
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusConflict {
			return rep, fmt.Errorf("create dataset %s: %w", cfg.Dataset, err)
		}
	}
	if err := d.waitFor(ctx, "dataset on every node", func() error {
		for _, n := range cfg.Controller.Nodes() {
			var ds json.RawMessage
			if err := d.getJSON(ctx, n.URL, "/v1/datasets/"+url.PathEscape(cfg.Dataset), nil, &ds); err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
		}
		return nil
	}); err != nil {
		return rep, err
	}

	w := newDrillWriter(d)
	wctx, cancelWriter := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { w.run(wctx) })
	stopWriter := func() {
		w.stop()
		// The writer finishes its current batch; a hard bound keeps a dead
		// cluster from hanging the drill.
		t := time.AfterFunc(cfg.StepTimeout, cancelWriter)
		wg.Wait()
		t.Stop()
		cancelWriter()
	}

	runErr := func() error {
		if cfg.Cycles == 0 {
			cfg.Logf("steady ingest for %v", cfg.Duration)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(cfg.Duration):
			}
			return nil
		}
		for i := range cfg.Cycles {
			c, err := d.cycle(ctx, w, i+1)
			if c != nil {
				rep.Cycles = append(rep.Cycles, *c)
			}
			if err != nil {
				return fmt.Errorf("cycle %d: %w", i+1, err)
			}
		}
		return nil
	}()
	stopWriter()
	rep.AckedRows, rep.AckedBatches, rep.WriteAttempts, rep.FailedAttempts, rep.Unacked = w.totals()
	rep.ErrorSamples = w.samples()
	rep.AckLatencyMS = w.latency()
	if runErr != nil {
		rep.finish()
		return rep, runErr
	}
	if rep.Unacked > 0 {
		rep.finish()
		return rep, fmt.Errorf("%d batch(es) never acked: row counts would be meaningless", rep.Unacked)
	}
	cfg.Logf("writer stopped: %d rows acked in %d batches; waiting for every node to catch up", rep.AckedRows, rep.AckedBatches)
	err = d.collectStored(ctx, rep)
	if err == nil && len(rep.StoredRows) == rep.Nodes {
		err = d.checkTracking(ctx, rep)
	}
	rep.finish()
	return rep, err
}

// trackingSamples is how many acked rows' objects checkTracking looks up.
const trackingSamples = 64

// checkTracking looks the object ids of acked rows up on every node once
// every node has applied everything (collectStored): each must have
// exactly one accepted apply event, and every node must tell the same
// journey (issue 4: identical answers after apply, also after SIGKILLed
// leaders). The writer sends batch n as rows n*Batch.., each retried until
// acked, so the acked rows are 0 .. AckedBatches*Batch-1; the sample is
// evenly spread over them, first and last included.
func (d *drill) checkTracking(ctx context.Context, rep *DrillReport) error {
	total := int64(rep.AckedBatches) * int64(d.cfg.Batch)
	if total == 0 {
		return nil
	}
	var ids []int64
	for i := range int64(trackingSamples) {
		id := i * (total - 1) / (trackingSamples - 1)
		if len(ids) == 0 || ids[len(ids)-1] != id {
			ids = append(ids, id)
		}
	}
	type event struct {
		Time    time.Time `json:"time"`
		TxID    string    `json:"tx_id"`
		Row     int       `json:"row"`
		Stage   string    `json:"stage"`
		Outcome string    `json:"outcome"`
	}
	shown := 0
	mismatch := func(format string, a ...any) {
		rep.TrackingMismatches++
		if shown < maxErrorSamples/2 {
			shown++
			rep.ErrorSamples = append(rep.ErrorSamples, "tracking: "+fmt.Sprintf(format, a...))
		}
	}
	for _, id := range ids {
		oid := (&Row{ID: id}).ObjectID()
		var first []event
		var firstNode string
		for _, n := range d.cfg.Controller.Nodes() {
			var res struct {
				Events []event `json:"events"`
			}
			if err := d.getJSON(ctx, n.URL, "/v1/tracking/objects/"+url.PathEscape(oid), url.Values{"limit": {"100"}}, &res); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				mismatch("%s on %s: %v", oid, n.Name, err)
				continue
			}
			applied := 0
			for _, e := range res.Events {
				if e.Stage == "apply" && e.Outcome == "accepted" {
					applied++
				}
			}
			if applied != 1 {
				mismatch("%s on %s: %d accepted apply events, want 1", oid, n.Name, applied)
				continue
			}
			if firstNode == "" {
				first, firstNode = res.Events, n.Name
			} else if !slices.Equal(res.Events, first) {
				mismatch("%s: %s and %s tell different journeys: %v, %v", oid, firstNode, n.Name, first, res.Events)
			}
		}
		rep.TrackedObjects++
	}
	d.cfg.Logf("tracking: %d objects looked up on every node, %d mismatches", rep.TrackedObjects, rep.TrackingMismatches)
	return nil
}

// cycle runs one kill/restart cycle.
func (d *drill) cycle(ctx context.Context, w *drillWriter, n int) (*DrillCycle, error) {
	cfg := d.cfg
	old, err := d.waitClusterReady(ctx)
	if err != nil {
		return nil, err
	}
	base := w.ackCount()
	if err := d.waitFor(ctx, "steady ingest", func() error {
		if got := w.ackCount() - base; got < cfg.SettleAcks {
			return fmt.Errorf("%d of %d acks (last error: %v)", got, cfg.SettleAcks, w.lastError())
		}
		return nil
	}); err != nil {
		return nil, err
	}
	c := &DrillCycle{Cycle: n, Killed: old.name, DetectMS: -1, ElectMS: -1, FailoverMS: -1}
	cfg.Logf("cycle %d: killing leader %s", n, old.name)
	killAt := time.Now()
	if err := cfg.Controller.Kill(ctx, old.name); err != nil {
		return nil, fmt.Errorf("kill %s: %w", old.name, err)
	}
	since := func() float64 { return msSince(killAt) }

	// Watch the survivors until they noticed and elected, and the writer
	// got an ack again.
	var firstAck time.Time
	err = d.waitFor(ctx, "failover", func() error {
		if c.DetectMS < 0 || c.ElectMS < 0 {
			for _, s := range cfg.Controller.Nodes() {
				if s.Name == old.name || s.URL == "" {
					continue
				}
				r, rerr := d.raft(ctx, s.URL)
				if rerr == nil {
					isOld := r.Leader.ID != "" && (r.Leader.ID == old.raftID || r.Leader.Address == old.raftAddr)
					noLeader := r.Leader.ID == "" // hashicorp/raft reports ("", "") while there is none
					if c.DetectMS < 0 && (noLeader || !isOld) {
						c.DetectMS = since()
					}
					if c.ElectMS < 0 && !noLeader && !isOld {
						c.ElectMS = since()
						c.NewLeader = d.nameOf(ctx, s.URL, r.Leader.ID, r.Leader.Address, cfg.Controller.Nodes())
					}
				}
				if c.DetectMS < 0 {
					if ms, merr := d.members(ctx, s.URL); merr == nil {
						for _, m := range ms {
							if m.Name == old.name && m.Status != "alive" && m.Status != "" {
								c.DetectMS = since()
							}
						}
					}
				}
			}
		}
		if firstAck.IsZero() {
			firstAck = w.firstAckSentAfter(killAt)
			if !firstAck.IsZero() {
				c.FailoverMS = ms(firstAck.Sub(killAt).Microseconds())
			}
		}
		switch {
		case c.DetectMS < 0:
			return errors.New("no survivor noticed the leader's death")
		case c.ElectMS < 0:
			return errors.New("no new leader")
		case firstAck.IsZero():
			return fmt.Errorf("no write acked since the kill (last error: %v)", w.lastError())
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	c.ErrorWindowMS, c.Errors = w.errorWindow(killAt, firstAck)
	cfg.Logf("cycle %d: detect %.0f ms, elect %.0f ms (%s), failover %.0f ms, %d failed attempts",
		n, c.DetectMS, c.ElectMS, c.NewLeader, c.FailoverMS, c.Errors)

	// The dead node is alarmed on every survivor (node_down, through Raft).
	c.AlarmMS = -1
	downID := "node_down:" + old.name
	if err := d.waitFor(ctx, "node_down alarm on every survivor", func() error {
		for _, s := range cfg.Controller.Nodes() {
			if s.Name == old.name || s.URL == "" {
				continue
			}
			type alarm struct {
				ID string `json:"id"`
			}
			var v struct {
				Active []alarm `json:"active"`
			}
			if err := d.getJSON(ctx, s.URL, "/v1/alarms", nil, &v); err != nil {
				return err
			}
			if !slices.ContainsFunc(v.Active, func(a alarm) bool { return a.ID == downID }) {
				return fmt.Errorf("%s: no %s alarm", s.Name, downID)
			}
		}
		return nil
	}); err != nil {
		cfg.Logf("cycle %d: %v", n, err)
	} else {
		c.AlarmMS = since()
		cfg.Logf("cycle %d: %s alarmed on every survivor after %.0f ms", n, downID, c.AlarmMS)
	}

	restartAt := time.Now()
	if err := cfg.Controller.Restart(ctx, old.name); err != nil {
		return c, fmt.Errorf("restart %s: %w", old.name, err)
	}
	var target uint64
	err = d.waitFor(ctx, "rejoin of "+old.name, func() error {
		var url string
		for _, x := range cfg.Controller.Nodes() {
			if x.Name == old.name {
				url = x.URL
			}
		}
		if url == "" {
			return errors.New("no URL")
		}
		if !d.ready(ctx, url) {
			return errors.New("not ready")
		}
		if target == 0 {
			l, err := d.findLeader(ctx)
			if err != nil {
				return err
			}
			target = l.applied
		}
		r, err := d.raft(ctx, url)
		if err != nil {
			return err
		}
		if r.AppliedIndex < target {
			return fmt.Errorf("applied index %d, leader's %d", r.AppliedIndex, target)
		}
		return nil
	})
	c.RejoinMS = msSince(restartAt)
	if err != nil {
		return c, err
	}
	cfg.Logf("cycle %d: %s rejoined in %.0f ms", n, old.name, c.RejoinMS)
	return c, nil
}

// collectStored waits until every node applied the leader's commit index
// and its local rows_accepted stops moving (or equals the acked rows), and
// fills StoredRows, LostRows and DuplicateRows.
func (d *drill) collectStored(ctx context.Context, rep *DrillReport) error {
	l, err := d.waitClusterReady(ctx)
	if err != nil {
		return err
	}
	target := l.commit
	stored := map[string]int64{}
	err = d.waitFor(ctx, "convergence", func() error {
		var errs []error
		for _, n := range d.cfg.Controller.Nodes() {
			r, err := d.raft(ctx, n.URL)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
				continue
			}
			if r.AppliedIndex < target {
				errs = append(errs, fmt.Errorf("%s applied %d of %d", n.Name, r.AppliedIndex, target))
				continue
			}
			var ds struct {
				Dataset client.Dataset `json:"dataset"`
			}
			if err := d.getJSON(ctx, n.URL, "/v1/datasets/"+url.PathEscape(d.cfg.Dataset), url.Values{"consistent": {"false"}}, &ds); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
				continue
			}
			stored[n.Name] = ds.Dataset.RowsAccepted
			if ds.Dataset.RowsAccepted != rep.AckedRows {
				errs = append(errs, fmt.Errorf("%s stores %d rows, %d acked", n.Name, ds.Dataset.RowsAccepted, rep.AckedRows))
			}
		}
		return errors.Join(errs...)
	})
	rep.StoredRows = stored
	if err != nil && len(stored) < len(d.cfg.Controller.Nodes()) {
		// Not a count mismatch but unreachable nodes: no verdict.
		return err
	}
	// A count mismatch that persisted for StepTimeout is the verdict, not
	// an error of the drill.
	return nil
}

func msSince(t time.Time) float64 { return ms(time.Since(t).Microseconds()) }

// sortedFloats returns a sorted copy of xs without negative (unmeasured)
// values.
func sortedFloats(xs []float64) []float64 {
	out := make([]float64, 0, len(xs))
	for _, x := range xs {
		if x >= 0 {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}
