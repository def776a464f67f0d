package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Member statuses of a MemberEvent (memberlist's view of a node).
const (
	MemberAlive   = "alive"
	MemberSuspect = "suspect"
	MemberDead    = "dead"
	MemberLeft    = "left"
)

// MemberEvent is one memberlist observation of a node.
type MemberEvent struct {
	// Name is the node name.
	Name string
	// Status is MemberAlive, MemberSuspect, MemberDead or MemberLeft (a
	// graceful leave, or a failed node reaped from the cluster).
	Status string
	// At is when the status was observed.
	At time.Time
}

// MonitorConfig configures a Monitor. The function fields connect it to the
// node's Raft and memberlist; they are called from the Monitor's goroutine
// and must be safe for concurrent use.
type MonitorConfig struct {
	// NodeName is this node's name; required. It is the subject of the
	// node's own alarms and the RaisedBy/ClearedBy of its proposals.
	NodeName string
	// Apply commits an entry cluster-wide (forwarding to the leader) and
	// returns the FSM response and the entry's index; it may fail, e.g.
	// without quorum. Required.
	Apply func(ctx context.Context, entry []byte) (any, uint64, error)
	// IsLeader reports whether this node is the Raft leader; required.
	IsLeader func() bool
	// LeaderKnown reports whether a leader is known and was heard from
	// recently; required.
	LeaderKnown func() bool
	// AppliedIndex is this node's last applied index; required.
	AppliedIndex func() uint64
	// LeaderCommitIndex is the best known commit index of the leader;
	// required.
	LeaderCommitIndex func() uint64
	// Alarms returns the active replicated alarms (Store.ActiveAlarms);
	// required.
	Alarms func() []Alarm
	// Members returns memberlist's current view of every member, including
	// failed members that have not been reaped; nil means none. The leader
	// reconciles member alarms against it when it gains leadership and on
	// every tick.
	Members func() []MemberEvent
	// DataDir is the directory whose file system is watched for free
	// space; "" disables the disk check.
	DataDir string
	// DiskUsage returns the free (available to this user) and total bytes
	// of the file system holding dir; nil means statfs(2). Tests replace it.
	DiskUsage func(dir string) (free, total uint64, err error)
	// Interval is the period of the checks; default 1s.
	Interval time.Duration
	// ApplyLagMax is the apply lag (leader commit index minus applied
	// index, in entries) above which apply_lag is raised once it lasted
	// ApplyLagFor; defaults 10000 entries and 10s.
	ApplyLagMax uint64
	ApplyLagFor time.Duration
	// DiskFreeMin is the fraction of the data file system that must stay
	// free (0.05 = 5%, the default); below it disk_space is raised, and it
	// is cleared once the free fraction is at least DiskFreeMin + 0.01.
	DiskFreeMin float64
	// QuorumLostAfter is how long no leader may be known before the local
	// quorum_lost alarm is raised; default 3s.
	QuorumLostAfter time.Duration
	// ApplyTimeout bounds one proposal; default 2s. A failed proposal is
	// retried on the next tick.
	ApplyTimeout time.Duration
	// TrackingWriteErrors, if set, returns the node's count of failed
	// tracking writes (Store.TrackingWriteErrors); a rise raises
	// tracking_write:<node>, cleared after TrackingClearAfter (default
	// 10m) without new errors.
	TrackingWriteErrors func() int64
	TrackingClearAfter  time.Duration
	// OnLocal, if set, is called from the Monitor's goroutine when a local
	// alarm is raised or cleared (Index 0, Alarm.Local set); it must not
	// block. Use it to hand the event to a Notifier.
	OnLocal func(ev AlarmEvent)
	// Now is the clock for alarm times; nil means time.Now.
	Now func() time.Time
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
}

// Defaults of MonitorConfig.
const (
	DefaultMonitorInterval = time.Second
	DefaultApplyLagMax     = 10000
	DefaultApplyLagFor     = 10 * time.Second
	DefaultDiskFreeMin     = 0.05
	DefaultQuorumLostAfter = 3 * time.Second
	DefaultMonitorApply    = 2 * time.Second
	// memberQueue is the capacity of the member event queue; events beyond
	// it are dropped (the leader's per-tick reconcile repairs the loss).
	memberQueue = 1024
	// diskHysteresis is added to DiskFreeMin to clear disk_space.
	diskHysteresis = 0.01
)

// DefaultMonitorConfig returns the defaults; NodeName and the functions are
// still to be set.
func DefaultMonitorConfig() MonitorConfig { return MonitorConfig{}.withDefaults() }

// Validate reports the first invalid field.
func (c MonitorConfig) Validate() error {
	switch {
	case c.NodeName == "":
		return errors.New("monitor: node name is required")
	case c.Apply == nil || c.IsLeader == nil || c.LeaderKnown == nil || c.AppliedIndex == nil ||
		c.LeaderCommitIndex == nil || c.Alarms == nil:
		return errors.New("monitor: Apply, IsLeader, LeaderKnown, AppliedIndex, LeaderCommitIndex and Alarms are required")
	case c.Interval < 0 || c.ApplyLagFor < 0 || c.QuorumLostAfter < 0 || c.ApplyTimeout < 0:
		return errors.New("monitor: durations must not be negative")
	case c.DiskFreeMin < 0 || c.DiskFreeMin >= 1:
		return fmt.Errorf("monitor: disk free min %g is not in [0, 1)", c.DiskFreeMin)
	}
	return nil
}

func (c MonitorConfig) withDefaults() MonitorConfig {
	if c.Interval == 0 {
		c.Interval = DefaultMonitorInterval
	}
	if c.ApplyLagMax == 0 {
		c.ApplyLagMax = DefaultApplyLagMax
	}
	if c.ApplyLagFor == 0 {
		c.ApplyLagFor = DefaultApplyLagFor
	}
	if c.DiskFreeMin == 0 {
		c.DiskFreeMin = DefaultDiskFreeMin
	}
	if c.QuorumLostAfter == 0 {
		c.QuorumLostAfter = DefaultQuorumLostAfter
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = DefaultMonitorApply
	}
	if c.TrackingClearAfter == 0 {
		c.TrackingClearAfter = 10 * time.Minute
	}
	if c.DiskUsage == nil {
		c.DiskUsage = statfsUsage
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// statfsUsage returns the bytes available to unprivileged users and the
// size of the file system holding dir.
func statfsUsage(dir string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	bs := uint64(st.Bsize) // int64 on linux, uint32 on darwin
	return uint64(st.Bavail) * bs, uint64(st.Blocks) * bs, nil
}

// Monitor is one node's part of the cluster's mutual monitoring. It turns
// observations into alarms:
//
//   - member alarms (leader only): memberlist dead -> node_down:<name>
//     (critical), suspect -> node_suspect:<name> (warning), alive -> both
//     cleared, left -> both cleared. The leader reconciles them against
//     MonitorConfig.Members when it gains leadership and on every tick, so
//     they are right even if the old leader died (or was the dead node)
//     before proposing, and lost or dropped events are repaired. Alarms
//     about nodes absent from Members and from every event are left alone.
//   - node alarms (every node, about itself): disk_space:<node> and
//     apply_lag:<node>.
//   - quorum_lost:<node> (local): no leader known for QuorumLostAfter. It
//     is kept in memory (LocalAlarms), not replicated: without quorum it
//     could not be committed. While no leader is known the Monitor
//     proposes nothing.
//
// Replicated alarms are proposed through MonitorConfig.Apply; the Monitor
// compares the wanted state with MonitorConfig.Alarms on every tick, so a
// failed proposal is retried on the next one, and after a successful one it
// waits until the entry is applied locally before proposing again.
//
// One goroutine, started by Start and stopped by Shutdown, does all the
// work; MemberEvent and LeadershipChanged only queue. Safe for concurrent
// use.
type Monitor struct {
	cfg MonitorConfig
	log *slog.Logger

	events  chan MemberEvent
	kick    chan struct{} // cap 1: leadership changed
	dropped atomic.Int64

	localMu sync.Mutex
	local   map[string]Alarm // active local alarms

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	// Owned by the loop goroutine.
	members       map[string]MemberEvent
	inflight      map[string]proposal
	lagSince      time.Time
	noLeaderSince time.Time
	diskErr       bool
	trackSeen     int64     // tracking write errors already seen
	trackLastErr  time.Time // when trackSeen last rose
}

// proposal is a committed change the local store may not have applied yet.
type proposal struct {
	active bool
	index  uint64
}

// NewMonitor returns a Monitor for cfg (zero fields take their defaults).
// It does nothing until Start. It panics if cfg is invalid (a wiring bug).
func NewMonitor(cfg MonitorConfig) *Monitor {
	if err := cfg.Validate(); err != nil {
		panic("cluster: " + err.Error())
	}
	cfg = cfg.withDefaults()
	return &Monitor{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "monitor"),
		events:   make(chan MemberEvent, memberQueue),
		kick:     make(chan struct{}, 1),
		local:    map[string]Alarm{},
		members:  map[string]MemberEvent{},
		inflight: map[string]proposal{},
	}
}

// Start starts the Monitor's goroutine; it runs until ctx ends or
// Shutdown. Calling Start more than once does nothing.
func (m *Monitor) Start(ctx context.Context) {
	m.once.Do(func() {
		ctx, m.cancel = context.WithCancel(ctx)
		m.wg.Go(func() { m.run(ctx) })
		m.log.Info("monitor started", "node", m.cfg.NodeName)
	})
}

// Shutdown stops the goroutine and waits for it, or returns ctx.Err() when
// ctx ends first. It is idempotent.
func (m *Monitor) Shutdown(ctx context.Context) error {
	m.once.Do(func() {}) // a Monitor never started stays stopped
	if m.cancel == nil {
		return nil
	}
	m.cancel()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// MemberEvent queues a memberlist observation; it never blocks (call it
// from the memberlist event handler). When the queue is full the event is
// dropped and counted; the leader's next reconcile repairs the loss.
func (m *Monitor) MemberEvent(ev MemberEvent) {
	select {
	case m.events <- ev:
	default:
		m.dropped.Add(1)
	}
}

// LeadershipChanged tells the Monitor that this node gained or lost
// leadership; it never blocks. On gaining it the Monitor reconciles member
// alarms against MonitorConfig.Members right away.
func (m *Monitor) LeadershipChanged(isLeader bool) {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// LocalAlarms returns the active local alarms (quorum_lost), oldest first.
// The slice is the caller's.
func (m *Monitor) LocalAlarms() []Alarm {
	m.localMu.Lock()
	out := slices.Collect(maps.Values(m.local))
	m.localMu.Unlock()
	sortAlarms(out)
	return out
}

func (m *Monitor) run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	m.tick(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-m.events:
			m.members[ev.Name] = ev
			for more := true; more; {
				select {
				case ev := <-m.events:
					m.members[ev.Name] = ev
				default:
					more = false
				}
			}
			if m.canPropose() && m.cfg.IsLeader() {
				m.reconcileMembers(ctx, false)
			}
		case <-m.kick:
			if m.canPropose() && m.cfg.IsLeader() {
				m.reconcileMembers(ctx, true)
			} else {
				m.forgetMemberProposals()
			}
		case <-t.C:
			m.tick(ctx)
		}
	}
}

// tick runs the periodic checks.
func (m *Monitor) tick(ctx context.Context) {
	if n := m.dropped.Swap(0); n > 0 {
		m.log.Warn("member events dropped, queue full", "dropped", n)
	}
	m.checkQuorum()
	if !m.canPropose() {
		return
	}
	if m.cfg.IsLeader() {
		m.reconcileMembers(ctx, true)
	}
	m.checkDisk(ctx)
	m.checkApplyLag(ctx)
	m.checkTracking(ctx)
}

// canPropose reports whether a leader is known (and so a proposal can
// commit).
func (m *Monitor) canPropose() bool { return m.cfg.LeaderKnown() }

// checkQuorum raises or clears the local quorum_lost alarm.
func (m *Monitor) checkQuorum() {
	now := m.cfg.Now()
	id := AlarmID(AlarmQuorumLost, m.cfg.NodeName)
	if m.cfg.LeaderKnown() {
		m.noLeaderSince = time.Time{}
		m.localMu.Lock()
		a, ok := m.local[id]
		delete(m.local, id)
		m.localMu.Unlock()
		if ok {
			at := now.UTC()
			a.ClearedAt, a.ClearedBy, a.ClearReason = &at, m.cfg.NodeName, "leader known again"
			m.log.Info("alarm cleared", "alarm", id, "severity", a.Severity, "reason", a.ClearReason, "local", true)
			m.onLocal(AlarmEvent{Type: AlarmCleared, Alarm: a})
		}
		return
	}
	if m.noLeaderSince.IsZero() {
		m.noLeaderSince = now
		return
	}
	if now.Sub(m.noLeaderSince) < m.cfg.QuorumLostAfter {
		return
	}
	m.localMu.Lock()
	_, ok := m.local[id]
	a := Alarm{ID: id, Kind: AlarmQuorumLost, Subject: m.cfg.NodeName, Severity: SeverityCritical,
		Message: fmt.Sprintf("node %s has known no leader for %s: it is cut off from the quorum or the cluster has none",
			m.cfg.NodeName, now.Sub(m.noLeaderSince).Round(time.Millisecond)),
		RaisedAt: m.noLeaderSince.UTC(), RaisedBy: m.cfg.NodeName, Local: true}
	if !ok {
		m.local[id] = a
	}
	m.localMu.Unlock()
	if !ok {
		m.log.Info("alarm raised", "alarm", id, "severity", a.Severity, "message", a.Message, "local", true)
		m.onLocal(AlarmEvent{Type: AlarmRaised, Alarm: a})
	}
}

func (m *Monitor) onLocal(ev AlarmEvent) {
	if m.cfg.OnLocal != nil {
		m.cfg.OnLocal(ev)
	}
}

// reconcileMembers makes the member alarms match the members' statuses
// (leader only). refresh first reads MonitorConfig.Members.
func (m *Monitor) reconcileMembers(ctx context.Context, refresh bool) {
	if refresh && m.cfg.Members != nil {
		for _, ev := range m.cfg.Members() {
			m.members[ev.Name] = ev
		}
	}
	active := m.activeSet()
	for _, name := range slices.Sorted(maps.Keys(m.members)) {
		ev := m.members[name]
		down, suspect := ev.Status == MemberDead, ev.Status == MemberSuspect
		reason := fmt.Sprintf("node %s is %s", name, ev.Status)
		m.ensure(ctx, active, Alarm{Kind: AlarmNodeDown, Subject: name, Severity: SeverityCritical,
			Message: fmt.Sprintf("node %s is dead (memberlist failure detection)", name)}, down, reason)
		m.ensure(ctx, active, Alarm{Kind: AlarmNodeSuspect, Subject: name, Severity: SeverityWarning,
			Message: fmt.Sprintf("node %s is suspected of failure (memberlist)", name)}, suspect, reason)
		if ev.Status == MemberLeft && !active[AlarmID(AlarmNodeDown, name)] && !active[AlarmID(AlarmNodeSuspect, name)] {
			delete(m.members, name) // gone for good; nothing left to clear
		}
	}
}

// forgetMemberProposals drops the leader's pending member proposals when
// leadership is lost; the next leader reconciles from scratch.
func (m *Monitor) forgetMemberProposals() {
	for id := range m.inflight {
		if a, _, _ := cutID(id); a == AlarmNodeDown || a == AlarmNodeSuspect {
			delete(m.inflight, id)
		}
	}
}

func cutID(id string) (kind, subject string, ok bool) {
	for i := range len(id) {
		if id[i] == ':' {
			return id[:i], id[i+1:], true
		}
	}
	return id, "", false
}

// checkDisk raises or clears disk_space:<node>.
func (m *Monitor) checkDisk(ctx context.Context) {
	if m.cfg.DataDir == "" {
		return
	}
	free, total, err := m.cfg.DiskUsage(m.cfg.DataDir)
	if err != nil || total == 0 {
		if !m.diskErr {
			m.log.Warn("cannot read data dir disk usage", "dir", m.cfg.DataDir, "error", err)
			m.diskErr = true
		}
		return
	}
	m.diskErr = false
	frac := float64(free) / float64(total)
	id := AlarmID(AlarmDiskSpace, m.cfg.NodeName)
	active := m.activeSet()
	want := active[id]
	switch {
	case frac < m.cfg.DiskFreeMin:
		want = true
	case frac >= m.cfg.DiskFreeMin+diskHysteresis:
		want = false
	}
	m.ensure(ctx, active, Alarm{Kind: AlarmDiskSpace, Subject: m.cfg.NodeName, Severity: SeverityCritical,
		Message: fmt.Sprintf("data dir %s has %.1f%% free (%d of %d MiB), below %.1f%%",
			m.cfg.DataDir, frac*100, free>>20, total>>20, m.cfg.DiskFreeMin*100)},
		want, fmt.Sprintf("data dir has %.1f%% free", frac*100))
}

// checkApplyLag raises or clears apply_lag:<node>.
func (m *Monitor) checkApplyLag(ctx context.Context) {
	commit, applied := m.cfg.LeaderCommitIndex(), m.cfg.AppliedIndex()
	var lag uint64
	if commit > applied {
		lag = commit - applied
	}
	now := m.cfg.Now()
	want := false
	if lag > m.cfg.ApplyLagMax {
		if m.lagSince.IsZero() {
			m.lagSince = now
		}
		want = now.Sub(m.lagSince) >= m.cfg.ApplyLagFor
	} else {
		m.lagSince = time.Time{}
	}
	id := AlarmID(AlarmApplyLag, m.cfg.NodeName)
	active := m.activeSet()
	if !want && active[id] && lag > m.cfg.ApplyLagMax {
		want = true // still lagging: keep it until the lag is gone
	}
	m.ensure(ctx, active, Alarm{Kind: AlarmApplyLag, Subject: m.cfg.NodeName, Severity: SeverityWarning,
		Message: fmt.Sprintf("node %s applies %d entries behind the leader's commit index (limit %d) for %s or more",
			m.cfg.NodeName, lag, m.cfg.ApplyLagMax, m.cfg.ApplyLagFor)},
		want, fmt.Sprintf("apply lag %d entries", lag))
}

// checkTracking raises or clears tracking_write:<node>.
func (m *Monitor) checkTracking(ctx context.Context) {
	if m.cfg.TrackingWriteErrors == nil {
		return
	}
	now := m.cfg.Now()
	if n := m.cfg.TrackingWriteErrors(); n > m.trackSeen {
		m.trackSeen, m.trackLastErr = n, now
	}
	want := !m.trackLastErr.IsZero() && now.Sub(m.trackLastErr) < m.cfg.TrackingClearAfter
	m.ensure(ctx, m.activeSet(), Alarm{Kind: AlarmTrackingWrite, Subject: m.cfg.NodeName, Severity: SeverityWarning,
		Message: fmt.Sprintf("node %s failed %d tracking writes during apply; ingests are unaffected but tracking records are incomplete",
			m.cfg.NodeName, m.trackSeen)},
		want, fmt.Sprintf("no tracking write errors for %s", m.cfg.TrackingClearAfter))
}

func (m *Monitor) activeSet() map[string]bool {
	as := m.cfg.Alarms()
	set := make(map[string]bool, len(as))
	for _, a := range as {
		set[a.ID] = true
	}
	return set
}

// ensure proposes raising (want) or clearing the alarm a (its ID derived
// from Kind and Subject) if the replicated state differs, unless a proposal
// for the same change was committed and is not applied locally yet.
func (m *Monitor) ensure(ctx context.Context, active map[string]bool, a Alarm, want bool, reason string) {
	a.ID = AlarmID(a.Kind, a.Subject)
	if active[a.ID] == want {
		delete(m.inflight, a.ID)
		return
	}
	if p, ok := m.inflight[a.ID]; ok && p.active == want && m.cfg.AppliedIndex() < p.index {
		return
	}
	now := m.cfg.Now().UTC()
	var entry []byte
	var err error
	if want {
		a.RaisedAt, a.RaisedBy = now, m.cfg.NodeName
		entry, err = EncodeAlarmRaise(a)
	} else {
		entry, err = EncodeAlarmClear(a.ID, now, m.cfg.NodeName, reason)
	}
	if err != nil {
		m.log.Error("encode alarm", "alarm", a.ID, "error", err)
		return
	}
	actx, cancel := context.WithTimeout(ctx, m.cfg.ApplyTimeout)
	_, index, err := m.cfg.Apply(actx, entry)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("alarm proposal failed, retrying next tick", "alarm", a.ID, "raise", want, "error", err)
		}
		return
	}
	m.inflight[a.ID] = proposal{active: want, index: index}
}
