package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/demandflow/demandflow/cluster/internal/raftstore"
)

// Errors returned by the cluster package. Business rejections of the FSM
// wrap one of these; check with errors.Is.
var (
	// ErrUnknownDataset means the named dataset does not exist.
	ErrUnknownDataset = errors.New("cluster: unknown dataset")
	// ErrDatasetExists means a dataset of that name already exists.
	ErrDatasetExists = errors.New("cluster: dataset exists")
	// ErrUnknownSeries means the series id is not in the dataset.
	ErrUnknownSeries = errors.New("cluster: unknown series")
	// ErrUnknownDimension means a series filter names a column that is not
	// a dimension of the dataset.
	ErrUnknownDimension = errors.New("cluster: unknown dimension")
	// ErrSchemaMismatch means an ingest was validated against another
	// incarnation of the dataset (deleted and re-created with a different
	// schema in between); re-validating and retrying fixes it.
	ErrSchemaMismatch = errors.New("cluster: dataset schema changed")
	// ErrShutdown means the node is shutting down.
	ErrShutdown = errors.New("cluster: shutting down")
	// ErrNotLeader means the entry was not submitted because no reachable
	// leader took it; retrying is always safe.
	ErrNotLeader = errors.New("cluster: no leader available")
	// ErrRetryable means the outcome of a commit is unknown (leadership was
	// lost, or the connection to the leader broke after sending): retry
	// only idempotently (same Idempotency-Key).
	ErrRetryable = errors.New("cluster: commit outcome unknown, retry with the same idempotency key")
	// ErrReplaying means a read needs observations or dirty marks that the
	// node is still restoring from its Raft log after a restart; retrying
	// shortly succeeds.
	ErrReplaying = errors.New("cluster: replaying the raft log after a restart")
)

func errNegative(what string, v int) error {
	return fmt.Errorf("%s %d is negative", what, v)
}

// Config configures a Cluster. Zero fields take the defaults named in their
// comments (filled by withDefaults).
type Config struct {
	// DataDir is the node's data directory: <DataDir>/fsm (FSM store),
	// <DataDir>/raft (Raft log), <DataDir>/snapshots. Required.
	DataDir string
	// NodeName names this node; it is also its Raft server id, so it must
	// be unique in the cluster and stable across restarts. Required.
	NodeName string
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
	// Store configures the FSM store.
	Store StoreConfig
	// Local configures the single-node committer used when Standalone.
	Local LocalConfig
	// Standalone applies entries locally without Raft or gossip (tools and
	// FSM benchmarks). Default false.
	Standalone bool

	// RaftAddr is the TCP address of the cluster port (Raft and
	// forwarding). Default "127.0.0.1:0".
	RaftAddr string
	// GossipAddr is memberlist's bind address (TCP and UDP). Default
	// "127.0.0.1:0".
	GossipAddr string
	// Join lists gossip addresses of nodes to join.
	Join []string
	// BootstrapExpect is the number of servers to wait for before
	// bootstrapping a new cluster. Default 1.
	BootstrapExpect int
	// ClusterKey encrypts gossip and authenticates cluster connections
	// (16, 24 or 32 bytes). Nil: gossip is not encrypted (warned).
	ClusterKey []byte
	// TLSCert is the certificate of the cluster port; nil makes an
	// ephemeral self-signed one.
	TLSCert *tls.Certificate
	// HTTPAddr, HTTP3Addr and Version are published in gossip metadata.
	HTTPAddr, HTTP3Addr, Version string

	// HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout tune Raft;
	// defaults 500ms, 500ms, 250ms (leader loss is noticed in 0.5-1 s on a
	// LAN; see bench/RESULTS.md for the measured failover).
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration
	// ProbeInterval tunes memberlist failure detection. Default 500ms.
	ProbeInterval time.Duration
	// ReconcileInterval is how often the leader reconciles members into
	// the Raft configuration. Default 1s.
	ReconcileInterval time.Duration
	// StabilizationTime is how long a new server stays a non-voter before
	// promotion. Default 2s.
	StabilizationTime time.Duration
	// DeadServerGrace is how long a failed server stays in the Raft
	// configuration before the leader removes it. Default 60s.
	DeadServerGrace time.Duration
	// SnapshotInterval and SnapshotThreshold set how often Raft snapshots
	// (and truncates its log). Defaults 60s and 8192 entries.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	// TrailingLogs is how many entries stay after a snapshot. Default 10240.
	TrailingLogs uint64

	// AlarmWebhooks are URLs that receive alarm events as JSON POSTs
	// (delivered by the leader, with retries). Default none.
	AlarmWebhooks []string
	// Monitor tunes the alarm checks; zero fields take their defaults (the
	// function fields are filled by Open).
	Monitor MonitorConfig

	// FS is the file system of the stores; nil means the OS (tests pass
	// vfs.NewMem()).
	FS vfs.FS
	// RaftTransport replaces the TCP Raft transport (tests use
	// raft.NewInmemTransport); forwarding still uses the cluster port.
	RaftTransport raft.Transport
	// MemberlistTransport replaces memberlist's network transport (tests
	// use memberlist.MockNetwork).
	MemberlistTransport memberlist.Transport
}

// DefaultConfig returns the default configuration (DataDir and NodeName
// still to be set).
func DefaultConfig() Config {
	return Config{Store: DefaultStoreConfig(), Local: DefaultLocalConfig()}.withDefaults()
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("cluster: data dir is required")
	}
	if c.NodeName == "" {
		return errors.New("cluster: node name is required")
	}
	if c.BootstrapExpect < 0 || c.BootstrapExpect > 7 {
		return fmt.Errorf("cluster: bootstrap expect %d, want 1..7", c.BootstrapExpect)
	}
	switch len(c.ClusterKey) {
	case 0, 16, 24, 32:
	default:
		return fmt.Errorf("cluster: cluster key is %d bytes, want 16, 24 or 32", len(c.ClusterKey))
	}
	if err := c.Local.Validate(); err != nil {
		return err
	}
	st := c.Store
	if st.Dir == "" {
		st.Dir = "x" // filled by withDefaults
	}
	return st.Validate()
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Store.Dir == "" && c.DataDir != "" {
		c.Store.Dir = filepath.Join(c.DataDir, "fsm")
	}
	if c.Store.Logger == nil {
		c.Store.Logger = c.Logger.With("component", "store")
	}
	if c.FS != nil && c.Store.FS == nil {
		c.Store.FS = c.FS
	}
	// Without Raft the FSM store is the only copy of an acked entry; with
	// Raft the synced log is, and a restart replays what the FSM lost.
	c.Store.Sync = c.Standalone
	if c.Local.Logger == nil {
		c.Local.Logger = c.Logger
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.RaftAddr == "" {
		c.RaftAddr = "127.0.0.1:0"
	}
	if c.GossipAddr == "" {
		c.GossipAddr = "127.0.0.1:0"
	}
	if c.BootstrapExpect == 0 {
		c.BootstrapExpect = 1
	}
	def(&c.HeartbeatTimeout, 500*time.Millisecond)
	def(&c.ElectionTimeout, 500*time.Millisecond)
	def(&c.LeaderLeaseTimeout, 250*time.Millisecond)
	def(&c.ProbeInterval, 500*time.Millisecond)
	def(&c.ReconcileInterval, time.Second)
	def(&c.StabilizationTime, 2*time.Second)
	def(&c.DeadServerGrace, 60*time.Second)
	def(&c.SnapshotInterval, 60*time.Second)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	return c
}

// Cluster is the node's handle on replicated state: the FSM store, Raft,
// gossip membership, forwarding to the leader and the leader's duties.
// Safe for concurrent use.
//
// # Lock order
//
// Cluster.mu (leader-loop state) before membership.mu; no lock is held
// while calling into raft or memberlist.
type Cluster struct {
	cfg   Config
	log   *slog.Logger
	store *Store
	fsm   *FSM
	local *Local // Standalone only

	raft      *raft.Raft
	logStore  *raftstore.Store
	snaps     raft.SnapshotStore
	transport raft.Transport
	layer     *netLayer
	fwd       *forwarder
	members   *membership
	monitor   *Monitor
	notifier  *Notifier
	track     *tracker // tracking block batcher; see tracking.go

	// ctx is the owner's lifetime context (STYLE §4 exception), canceled
	// by Close.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	reconcileCh chan struct{}
	joined      atomic.Bool // the configured join succeeded (or none is configured)
	notifyCh    chan bool   // raft.Config.NotifyCh: buffered, never drops
	observers   []func(Member)
	leaderObs   []func(bool)

	closeOnce sync.Once
	closeErr  error
}

// Open opens the FSM store and, unless Standalone, the Raft log, the
// cluster port, gossip, and starts the background loops. The node is
// usable (reads, and writes once a leader exists) when Open returns.
func Open(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	store, err := OpenStore(cfg.Store)
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, log: cfg.Logger, store: store, fsm: NewFSM(store, cfg.Logger),
		reconcileCh: make(chan struct{}, 1), notifyCh: make(chan bool, 64)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if cfg.Standalone {
		c.local = NewLocal(c.fsm, cfg.Local)
		c.local.Start()
		c.startTracking()
		cfg.Logger.Info("cluster opened", "raft_index", store.AppliedIndex(), "mode", "standalone")
		return c, nil
	}
	if err := c.openRaft(); err != nil {
		c.cancel()
		_ = c.closeRaft()
		_ = store.Close()
		return nil, err
	}
	c.startTracking()
	return c, nil
}

// startAlarms wires the alarm Monitor (member, disk, apply-lag and local
// quorum alarms) and the webhook Notifier to Raft, gossip and the FSM.
func (c *Cluster) startAlarms() error {
	var err error
	c.notifier, err = NewNotifier(NotifierConfig{URLs: c.cfg.AlarmWebhooks, Node: c.cfg.NodeName, Logger: c.log.With("component", "notify")})
	if err != nil {
		return err
	}
	mc := c.cfg.Monitor
	mc.NodeName = c.cfg.NodeName
	mc.Apply = c.Apply
	mc.IsLeader = c.IsLeader
	mc.LeaderKnown = c.LeaderKnown
	mc.AppliedIndex = c.store.AppliedIndex
	mc.LeaderCommitIndex = func() uint64 { return c.raft.CommitIndex() }
	mc.Alarms = c.store.ActiveAlarms
	mc.TrackingWriteErrors = c.store.TrackingWriteErrors
	mc.Members = func() []MemberEvent {
		var out []MemberEvent
		for _, m := range c.members.list() {
			out = append(out, MemberEvent{Name: m.Name, Status: m.Status, At: m.Since})
		}
		return out
	}
	if mc.DataDir == "" {
		mc.DataDir = c.cfg.DataDir
	}
	mc.OnLocal = c.notifier.Deliver
	if mc.Logger == nil {
		mc.Logger = c.log.With("component", "monitor")
	}
	c.monitor = NewMonitor(mc)
	c.fsm.SetAlarmObserver(func(ev AlarmEvent) {
		if c.IsLeader() {
			c.notifier.Deliver(ev)
		}
	})
	c.OnMemberChange(func(m Member) { c.monitor.MemberEvent(MemberEvent{Name: m.Name, Status: m.Status, At: m.Since}) })
	c.OnLeadershipChange(c.monitor.LeadershipChanged)
	c.notifier.Start(c.ctx)
	c.monitor.Start(c.ctx)
	return nil
}

// LocalAlarms returns this node's own, unreplicated alarms (quorum_lost).
func (c *Cluster) LocalAlarms() []Alarm {
	if c.monitor == nil {
		return nil
	}
	return c.monitor.LocalAlarms()
}

// Apply commits an encoded entry (see commands.go) through the leader and
// returns the FSM's response and the entry's Raft index; any node may call
// it. Business rejections come back as err (errors.Is with
// ErrUnknownDataset, ErrDatasetExists, ...). ErrNotLeader and ErrRetryable
// mean the caller (client) should retry; if ctx ends first Apply returns
// ctx.Err() and the entry may still be applied.
func (c *Cluster) Apply(ctx context.Context, entry []byte) (any, uint64, error) {
	if c.local != nil {
		return c.local.Apply(ctx, entry)
	}
	return c.applyAnywhere(ctx, entry)
}

// Store returns the FSM store for reads.
func (c *Cluster) Store() *Store { return c.store }

// PebbleMetrics returns the Pebble metrics of the node's stores, by store
// name ("state", and "raft" unless standalone), as Pebble formats them.
// Diagnostics only: the text is for people, its layout is Pebble's.
func (c *Cluster) PebbleMetrics() map[string]string {
	m := map[string]string{"state": c.store.PebbleMetrics()}
	if c.logStore != nil {
		m["raft"] = c.logStore.PebbleMetrics()
	}
	return m
}

// FSM returns the state machine (for hooks such as alarm observers).
func (c *Cluster) FSM() *FSM { return c.fsm }

// NodeName returns this node's name.
func (c *Cluster) NodeName() string { return c.cfg.NodeName }

// OnMemberChange registers f to be called (from the membership goroutine)
// on every member status change. Register before traffic starts.
func (c *Cluster) OnMemberChange(f func(Member)) { c.observers = append(c.observers, f) }

// OnLeadershipChange registers f, called with true when this node becomes
// leader (after establishing leadership) and false when it stops.
func (c *Cluster) OnLeadershipChange(f func(bool)) { c.leaderObs = append(c.leaderObs, f) }

// Close leaves the cluster gracefully (when it can), stops Raft and the
// loops, and closes the stores; it is idempotent.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		if c.local != nil {
			_ = c.local.Shutdown(context.Background())
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if c.monitor != nil {
			_ = c.monitor.Shutdown(sctx)
		}
		if c.notifier != nil {
			_ = c.notifier.Shutdown(sctx)
		}
		cancel()
		c.closeErr = errors.Join(c.closeRaft(), c.store.Close())
		c.log.Info("cluster closed")
	})
	return c.closeErr
}

// fileExists reports whether path exists.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// advertiseAddr turns a bound address with an unspecified host into one
// peers can dial (the first private IPv4 address of this host).
func advertiseAddr(bound net.Addr) net.Addr {
	ta, ok := bound.(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return bound
	}
	ifaces, _ := net.InterfaceAddrs()
	for _, a := range ifaces {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			return &net.TCPAddr{IP: ipn.IP, Port: ta.Port}
		}
	}
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ta.Port}
}
