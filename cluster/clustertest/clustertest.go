// Package clustertest runs in-memory Demandflow clusters inside one test
// process (Nomad's testing.go, STYLE §5 and §9): Raft over
// raft.InmemTransport connected pairwise, memberlist over an in-memory
// GossipNetwork, the FSM and Raft log on Pebble over vfs.NewMem, and tight
// timings (50-100 ms) so elections and failure detection take well under a
// second.
//
// The one real socket per node is the cluster port's forwarding listener on
// 127.0.0.1:0 (cluster.Config has no hook for it), so partitions cut Raft
// and gossip but not forwarding: a follower cut off from Raft may still
// forward to a leader it knows of.
//
// Faults: Disconnect and Partition cut Raft and gossip between nodes, Heal
// undoes them; Stop crashes a node (cut off, then closed without a
// reachable leave) and Restart reopens it on the same file system, at the
// same or (RestartMoved) a new Raft address. Every node is closed in
// t.Cleanup. Wait on state with WaitLeader, WaitApplied or testutil.WaitFor,
// never by sleeping.
package clustertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	"github.com/oklog/ulid/v2"

	"github.com/demandflow/demandflow/cluster"
	"github.com/demandflow/demandflow/internal/testutil"
	"github.com/demandflow/demandflow/stream"
)

// Timings of Config. Raft needs LeaderLeaseTimeout <= HeartbeatTimeout.
const (
	HeartbeatTimeout   = 100 * time.Millisecond
	ElectionTimeout    = 100 * time.Millisecond
	LeaderLeaseTimeout = 50 * time.Millisecond
	ProbeInterval      = 100 * time.Millisecond
	ReconcileInterval  = 100 * time.Millisecond
	StabilizationTime  = 300 * time.Millisecond
	DeadServerGrace    = time.Second
	MonitorInterval    = 100 * time.Millisecond
	QuorumLostAfter    = 500 * time.Millisecond
)

// Config returns the configuration of one in-memory test node called name:
// tight timings (see the constants), DataDir t.TempDir(), FS vfs.NewMem(),
// small Pebble caches, loopback :0 addresses, an unconnected
// raft.InmemTransport and a transport on a fresh GossipNetwork (New
// replaces both with ones on the cluster's shared networks), and logs at
// Warn and above to t.Output() until the test ends.
func Config(t testing.TB, name string) cluster.Config {
	_, rt := raft.NewInmemTransport("")
	return cluster.Config{
		DataDir:  t.TempDir(),
		NodeName: name,
		Logger:   testLogger(t, name),
		Store:    cluster.StoreConfig{CacheSize: 4 << 20, MemTableSize: 4 << 20},
		RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		BootstrapExpect:    1,
		HeartbeatTimeout:   HeartbeatTimeout,
		ElectionTimeout:    ElectionTimeout,
		LeaderLeaseTimeout: LeaderLeaseTimeout,
		ProbeInterval:      ProbeInterval,
		ReconcileInterval:  ReconcileInterval,
		StabilizationTime:  StabilizationTime,
		DeadServerGrace:    DeadServerGrace,
		Monitor: cluster.MonitorConfig{Interval: MonitorInterval, QuorumLostAfter: QuorumLostAfter,
			ApplyTimeout: time.Second},
		FS:                  vfs.NewMem(),
		RaftTransport:       rt,
		MemberlistTransport: NewGossipNetwork().NewTransport(""),
	}
}

// guardedWriter drops writes once the test is over (a late log line from
// a library goroutine must not fail the test binary).
type guardedWriter struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func (g *guardedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		return len(p), nil
	}
	return g.w.Write(p)
}

func testLogger(t testing.TB, name string) *slog.Logger {
	g := &guardedWriter{w: t.Output()}
	t.Cleanup(func() { g.mu.Lock(); g.done = true; g.mu.Unlock() })
	return slog.New(slog.NewTextHandler(g, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", name)
}

// Option changes how New and Add configure nodes.
type Option func(*options)

type options struct {
	configure []func(*cluster.Config)
	noWait    bool
}

// WithConfig lets f adjust every node's Config (f sees NodeName) after
// Config and the cluster's wiring filled it.
func WithConfig(f func(cfg *cluster.Config)) Option {
	return func(o *options) { o.configure = append(o.configure, f) }
}

// NoWait makes New return without waiting for a leader and full voter
// membership (bootstrap tests).
func NoWait() Option { return func(o *options) { o.noWait = true } }

// Node is one member of a test cluster. Its *cluster.Cluster changes on
// Restart; get it with C.
type Node struct {
	Name string

	base cluster.Config // DataDir, FS, tunables: kept across restarts

	mu         sync.Mutex
	c          *cluster.Cluster
	raftAddr   raft.ServerAddress
	raftTrans  *raft.InmemTransport
	gossipAddr string
	running    bool
}

// C returns the node's current cluster handle (nil before its first
// start). After Stop it is the closed handle.
func (n *Node) C() *cluster.Cluster {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.c
}

// Running reports whether the node is started and not stopped.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.running
}

// RaftAddr returns the node's current Raft address.
func (n *Node) RaftAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return string(n.raftAddr)
}

// Cluster is a running test cluster; its methods fail the test on error
// and are safe for concurrent use.
type Cluster struct {
	t      testing.TB
	opts   options
	gossip *GossipNetwork
	expect int

	mu    sync.Mutex
	nodes []*Node
	group map[string]int // node name -> raft partition group (0 when absent)
	iso   int
}

// New starts n nodes named n1..n<n>, all with BootstrapExpect n; n2.. join
// n1's gossip address. Unless NoWait is given it waits until a leader is
// elected and all n are voters. Everything is closed in t.Cleanup.
func New(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c := &Cluster{t: t, gossip: NewGossipNetwork(), expect: n, group: map[string]int{}}
	for _, o := range opts {
		o(&c.opts)
	}
	t.Cleanup(c.closeAll)
	for i := range n {
		c.add(fmt.Sprintf("n%d", i+1))
	}
	if !c.opts.noWait {
		c.WaitLeader(10 * time.Second)
		c.WaitVoters(10*time.Second, n)
	}
	return c
}

// Add starts a new node joining the cluster (named n<k> for the next k)
// and returns it without waiting for Raft to add it.
func (c *Cluster) Add() *Node {
	c.t.Helper()
	c.mu.Lock()
	name := fmt.Sprintf("n%d", len(c.nodes)+1)
	c.mu.Unlock()
	return c.add(name)
}

func (c *Cluster) add(name string) *Node {
	c.t.Helper()
	n := &Node{Name: name, base: Config(c.t, name)}
	n.base.BootstrapExpect = c.expect
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	c.start(n, false)
	return n
}

// start opens n with fresh transports (a new Raft address when moved or on
// first start) wired to every running node.
func (c *Cluster) start(n *Node, moved bool) {
	c.t.Helper()
	cfg := n.base
	n.mu.Lock()
	addr := n.raftAddr
	if moved {
		addr = ""
	}
	addr, rt := raft.NewInmemTransport(addr)
	gt := c.gossip.NewTransport(n.gossipAddr)
	n.mu.Unlock()

	cfg.RaftTransport, cfg.MemberlistTransport = rt, gt
	cfg.Join = nil
	for _, o := range c.Running() {
		if o != n {
			cfg.Join = append(cfg.Join, o.gossipAddrOf())
		}
	}
	for _, f := range c.opts.configure {
		f(&cfg)
	}
	c.connect(n.Name, addr, rt)
	cl, err := cluster.Open(c.t.Context(), cfg)
	if err != nil {
		_ = gt.Shutdown()
		c.t.Fatalf("open %s: %v", n.Name, err)
	}
	n.mu.Lock()
	n.c, n.raftAddr, n.raftTrans, n.gossipAddr, n.running = cl, addr, rt, gt.Addr(), true
	n.mu.Unlock()
}

func (n *Node) gossipAddrOf() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gossipAddr
}

func (n *Node) transport() *raft.InmemTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.raftTrans
}

// connect wires rt to every running node's Raft transport in its partition
// group, both ways.
func (c *Cluster) connect(name string, addr raft.ServerAddress, rt *raft.InmemTransport) {
	c.mu.Lock()
	g := c.group[name]
	c.mu.Unlock()
	for _, o := range c.Running() {
		if o.Name == name {
			continue
		}
		c.mu.Lock()
		og := c.group[o.Name]
		c.mu.Unlock()
		if og != g {
			continue
		}
		ot := o.transport()
		rt.Connect(raft.ServerAddress(o.RaftAddr()), ot)
		ot.Connect(addr, rt)
	}
}

// Nodes returns every node ever started, running or not, in start order.
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nodes)
}

// Node returns the node called name; it fails the test if there is none.
func (c *Cluster) Node(name string) *Node {
	c.t.Helper()
	for _, n := range c.Nodes() {
		if n.Name == name {
			return n
		}
	}
	c.t.Fatalf("no node %s", name)
	return nil
}

// Running returns the running nodes.
func (c *Cluster) Running() []*Node {
	var out []*Node
	for _, n := range c.Nodes() {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// Leader returns the running node that is Raft leader in the highest
// term, or nil.
func (c *Cluster) Leader() *Node {
	var best *Node
	var term uint64
	for _, n := range c.Running() {
		if !n.C().IsLeader() {
			continue
		}
		info, _ := n.C().RaftInfo()
		if best == nil || info.Term > term {
			best, term = n, info.Term
		}
	}
	return best
}

// Followers returns the running nodes other than Leader().
func (c *Cluster) Followers() []*Node {
	l := c.Leader()
	var out []*Node
	for _, n := range c.Running() {
		if n != l {
			out = append(out, n)
		}
	}
	return out
}

// WaitLeader waits until a running node is leader and every running node
// in its partition group knows it, and returns it.
func (c *Cluster) WaitLeader(timeout time.Duration) *Node {
	c.t.Helper()
	var l *Node
	testutil.WaitFor(c.t, timeout, func() error {
		l = c.Leader()
		if l == nil {
			return errors.New("no leader")
		}
		c.mu.Lock()
		g := c.group[l.Name]
		c.mu.Unlock()
		for _, n := range c.Running() {
			c.mu.Lock()
			ng := c.group[n.Name]
			c.mu.Unlock()
			if ng != g {
				continue
			}
			if info, _ := n.C().RaftInfo(); info.Leader.ID != l.Name {
				return fmt.Errorf("%s sees leader %q, want %s", n.Name, info.Leader.ID, l.Name)
			}
		}
		return nil
	})
	return l
}

// WaitVoters waits until the leader's Raft configuration has exactly want
// voters.
func (c *Cluster) WaitVoters(timeout time.Duration, want int) {
	c.t.Helper()
	testutil.WaitFor(c.t, timeout, func() error {
		l := c.Leader()
		if l == nil {
			return errors.New("no leader")
		}
		got := Voters(l.C())
		if len(got) != want {
			return fmt.Errorf("voters %v, want %d", got, want)
		}
		return nil
	})
}

// Voters returns the ids of the voters in c's Raft configuration, sorted.
func Voters(c *cluster.Cluster) []string {
	return peers(c, "Voter")
}

// Nonvoters returns the ids of the non-voters in c's Raft configuration.
func Nonvoters(c *cluster.Cluster) []string {
	return peers(c, "Nonvoter")
}

func peers(c *cluster.Cluster, suffrage string) []string {
	info, err := c.RaftInfo()
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range info.Peers {
		if p.Suffrage == suffrage {
			out = append(out, p.ID)
		}
	}
	slices.Sort(out)
	return out
}

// WaitApplied waits until every running node's FSM applied index reaches
// index.
func (c *Cluster) WaitApplied(timeout time.Duration, index uint64) {
	c.t.Helper()
	testutil.WaitFor(c.t, timeout, func() error {
		for _, n := range c.Running() {
			if got := n.C().Store().AppliedIndex(); got < index {
				return fmt.Errorf("%s applied %d, want %d", n.Name, got, index)
			}
		}
		return nil
	})
}

// Disconnect cuts n off from every other node (Raft and gossip; not the
// forwarding port, see the package doc).
func (c *Cluster) Disconnect(n *Node) {
	c.mu.Lock()
	c.iso--
	c.group[n.Name] = c.iso
	c.mu.Unlock()
	c.gossip.Isolate(n.gossipAddrOf())
	c.rewire()
}

// Partition splits the cluster: nodes in different groups cannot reach
// each other over Raft or gossip. Unlisted nodes form one more group.
func (c *Cluster) Partition(groups ...[]*Node) {
	c.mu.Lock()
	clear(c.group)
	var gaddrs [][]string
	for i, g := range groups {
		var as []string
		for _, n := range g {
			c.group[n.Name] = i + 1
			as = append(as, n.gossipAddrOf())
		}
		gaddrs = append(gaddrs, as)
	}
	c.mu.Unlock()
	c.gossip.Partition(gaddrs...)
	c.rewire()
}

// Heal removes every partition and disconnection.
func (c *Cluster) Heal() {
	c.mu.Lock()
	clear(c.group)
	c.mu.Unlock()
	c.gossip.Heal()
	c.rewire()
}

// rewire connects each pair of running nodes in the same group and
// disconnects the others.
func (c *Cluster) rewire() {
	run := c.Running()
	c.mu.Lock()
	group := maps.Clone(c.group)
	c.mu.Unlock()
	for _, a := range run {
		for _, b := range run {
			if a == b {
				continue
			}
			at, baddr := a.transport(), raft.ServerAddress(b.RaftAddr())
			if group[a.Name] == group[b.Name] {
				at.Connect(baddr, b.transport())
			} else {
				at.Disconnect(baddr)
			}
		}
	}
}

// Stop crashes n: it is cut off from Raft and gossip first, so its close
// (and memberlist leave) reaches nobody; its data stays on its FS.
func (c *Cluster) Stop(n *Node) {
	c.t.Helper()
	if !n.Running() {
		return
	}
	addr := raft.ServerAddress(n.RaftAddr())
	n.mu.Lock()
	n.running = false
	cl := n.c
	n.mu.Unlock()
	c.gossip.Isolate(n.gossipAddrOf())
	for _, o := range c.Running() {
		o.transport().Disconnect(addr)
	}
	n.transport().DisconnectAll()
	if err := cl.Close(); err != nil {
		c.t.Errorf("close %s: %v", n.Name, err)
	}
}

// Close stops n gracefully: it leaves the gossip cluster, so the leader
// removes it from the Raft configuration.
func (c *Cluster) Close(n *Node) {
	c.t.Helper()
	if !n.Running() {
		return
	}
	n.mu.Lock()
	n.running = false
	cl := n.c
	n.mu.Unlock()
	if err := cl.Close(); err != nil {
		c.t.Errorf("close %s: %v", n.Name, err)
	}
	addr := raft.ServerAddress(n.RaftAddr())
	for _, o := range c.Running() {
		o.transport().Disconnect(addr)
	}
}

// Restart reopens a stopped node on its data (same FS and DataDir) at the
// same Raft and gossip addresses, joining the running nodes.
func (c *Cluster) Restart(n *Node) {
	c.t.Helper()
	c.restart(n, false)
}

// RestartMoved is Restart at a new Raft address.
func (c *Cluster) RestartMoved(n *Node) {
	c.t.Helper()
	c.restart(n, true)
}

func (c *Cluster) restart(n *Node, moved bool) {
	c.t.Helper()
	if n.Running() {
		c.t.Fatalf("restart %s: still running", n.Name)
	}
	c.mu.Lock()
	delete(c.group, n.Name)
	c.mu.Unlock()
	c.gossip.mu.Lock()
	delete(c.gossip.group, n.gossipAddrOf())
	c.gossip.mu.Unlock()
	c.start(n, moved)
}

func (c *Cluster) closeAll() {
	var wg sync.WaitGroup
	for _, n := range c.Running() {
		n.mu.Lock()
		n.running = false
		cl := n.c
		n.mu.Unlock()
		wg.Go(func() { _ = cl.Close() })
	}
	wg.Wait()
}

// CreateDataset creates the dataset s through node c (any node).
func CreateDataset(ctx context.Context, c *cluster.Cluster, s stream.Schema) (uint64, error) {
	s.Normalize()
	e, err := cluster.EncodeCreateDataset(s, time.Now())
	if err != nil {
		return 0, err
	}
	_, idx, err := c.Apply(ctx, e)
	return idx, err
}

// Ingest validates the CSV body against the dataset as node c knows it and
// applies it through c in one or more parts (as the node's ingest handler
// does), with the idempotency key key ("" = a fresh one). It returns the
// accepted rows (as the FSM answered, so a replay answers the first
// result) and the index of the last part.
func Ingest(ctx context.Context, c *cluster.Cluster, dataset, key, csv string) (accepted int, index uint64, err error) {
	s, ok := c.Store().Dataset(dataset)
	if !ok {
		return 0, 0, fmt.Errorf("%w: %s", cluster.ErrUnknownDataset, dataset)
	}
	b, err := stream.Decode(ctx, stream.CSV, strings.NewReader(csv), s, stream.DecodeConfig{})
	if err != nil {
		return 0, 0, err
	}
	defer b.Release()
	tx := ulid.Make().String()
	if key == "" {
		key = tx
	}
	meta := cluster.IngestMeta{TxID: tx, Dataset: dataset, Source: "clustertest", ContentType: "text/csv",
		Node: c.NodeName(), IdempotencyKey: key, Bytes: int64(len(csv)), RowsIn: b.RowsIn, ReceivedAt: time.Now().UTC()}
	parts, err := cluster.EncodeIngest(meta, s, b, 0)
	if err != nil {
		return 0, 0, err
	}
	for _, p := range parts {
		resp, idx, err := c.Apply(ctx, p)
		if err != nil {
			return accepted, index, err
		}
		r, ok := resp.(*cluster.IngestResult)
		if !ok {
			return accepted, index, fmt.Errorf("ingest: response %T", resp)
		}
		accepted += r.Accepted
		index = idx
	}
	return accepted, index, nil
}
