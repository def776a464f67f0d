package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// NodeMeta is what a node tells the others about itself through gossip.
// It is JSON, versioned by V, and must stay under memberlist.MetaMaxSize
// (512 bytes); longer metadata panics inside memberlist, so encodeMeta
// checks it.
type NodeMeta struct {
	V      int    `json:"v"`
	Role   string `json:"role"`             // "server"
	Raft   string `json:"raft"`             // Raft address (ServerAddress)
	Fwd    string `json:"fwd"`              // forwarding address (the cluster port)
	HTTP   string `json:"http,omitempty"`   // API address (TCP)
	HTTP3  string `json:"http3,omitempty"`  // API address (UDP)
	Expect int    `json:"expect"`           // --bootstrap-expect
	Boot   bool   `json:"boot,omitempty"`   // has Raft state (bootstrapped or joined)
	Ver    string `json:"ver,omitempty"`    // software version
	Status string `json:"status,omitempty"` // unused; reserved
}

func encodeMeta(m NodeMeta) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("cluster: node metadata is %d bytes, limit %d", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// Member is one node as this node sees it.
type Member struct {
	Name   string    `json:"name"`
	Addr   string    `json:"addr"` // gossip address
	Status string    `json:"status"`
	Since  time.Time `json:"since"`
	Meta   NodeMeta  `json:"-"`
}

// Member statuses.
const (
	StatusAlive   = "alive"
	StatusSuspect = "suspect"
	StatusDead    = "dead"
	StatusLeft    = "left"
)

// membership runs memberlist and keeps the member table. memberlist calls
// the event delegate under its own lock, so the delegate only pushes into
// events; one goroutine (loop) owns the table updates and fan-out.
type membership struct {
	ml     *memberlist.Memberlist
	log    *slog.Logger
	events chan memberlist.NodeEvent
	acks   chan string   // names of members whose probe this node saw acked
	probe  time.Duration // memberlist's probe interval
	self   string
	notify func(m Member) // called from loop for every status change
	bound  string         // gossip address, fixed at creation

	metaMu sync.Mutex
	meta   NodeMeta

	mu      sync.RWMutex
	members map[string]*Member
}

// eventDelegate queues copies of the nodes: n points into memberlist's
// state, which it updates in place under its node lock (held during these
// calls, so copying here is race-free; reading n later is not).
type eventDelegate struct{ ch chan<- memberlist.NodeEvent }

func (d eventDelegate) NotifyJoin(n *memberlist.Node) {
	c := *n
	d.ch <- memberlist.NodeEvent{Event: memberlist.NodeJoin, Node: &c}
}
func (d eventDelegate) NotifyLeave(n *memberlist.Node) {
	c := *n
	d.ch <- memberlist.NodeEvent{Event: memberlist.NodeLeave, Node: &c}
}
func (d eventDelegate) NotifyUpdate(n *memberlist.Node) {
	c := *n
	d.ch <- memberlist.NodeEvent{Event: memberlist.NodeUpdate, Node: &c}
}

// metaDelegate serves our metadata; the other Delegate hooks are unused.
type metaDelegate struct{ m *membership }

func (d metaDelegate) NodeMeta(limit int) []byte {
	d.m.metaMu.Lock()
	defer d.m.metaMu.Unlock()
	b, err := encodeMeta(d.m.meta)
	if err != nil || len(b) > limit {
		return nil
	}
	return b
}
func (metaDelegate) NotifyMsg([]byte)                           {}
func (metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (metaDelegate) LocalState(join bool) []byte                { return nil }
func (metaDelegate) MergeRemoteState(buf []byte, join bool)     {}

// memberlistConfig tunes memberlist's LAN profile for fast failure
// detection on a LAN: a silent node is suspected after one missed probe
// (500 ms interval) and declared dead about 1-3 s later, which keeps the
// "dead node alarmed on every survivor within 6 s" target.
func memberlistConfig(cfg Config) (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeName
	host, port, err := splitHostPort(cfg.GossipAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip addr: %w", err)
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeInterval / 2
	mc.SuspicionMult = 2
	mc.GossipInterval = 100 * time.Millisecond
	mc.PushPullInterval = 15 * time.Second
	mc.GossipToTheDeadTime = 5 * time.Second
	mc.DeadNodeReclaimTime = time.Second // a restarted node may come back at once, maybe at a new address
	mc.TCPTimeout = 2 * time.Second
	if len(cfg.ClusterKey) > 0 {
		mc.SecretKey = cfg.ClusterKey
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	mc.Logger = log.New(slogWriter{cfg.Logger.With("component", "memberlist")}, "", 0)
	if cfg.MemberlistTransport != nil {
		mc.Transport = cfg.MemberlistTransport
	}
	return mc, nil
}

func splitHostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	if h == "" {
		h = "0.0.0.0"
	}
	return h, port, nil
}

// slogWriter turns memberlist's log lines ("[WARN] memberlist: ...") into
// slog records at the matching level.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	s := strings.TrimSpace(string(p))
	lvl := slog.LevelDebug
	switch {
	case strings.Contains(s, "[ERR]"):
		lvl = slog.LevelError
	case strings.Contains(s, "[WARN]"):
		lvl = slog.LevelWarn
	case strings.Contains(s, "[INFO]"):
		lvl = slog.LevelInfo
	}
	// memberlist's INFO lines are per-event chatter; keep them at debug.
	// An election after a leader's heartbeat timeout is how Raft starts up
	// and fails over: worth an Info line, not a warning.
	if lvl == slog.LevelInfo {
		lvl = slog.LevelDebug
	} else if lvl == slog.LevelWarn && strings.Contains(s, "heartbeat timeout reached, starting election") {
		lvl = slog.LevelInfo
	}
	w.l.Log(nil, lvl, s) //nolint:staticcheck // no ctx at hand in a log.Logger writer
	return len(p), nil
}

var _ io.Writer = slogWriter{}

func newMembership(cfg Config, meta NodeMeta, notify func(Member)) (*membership, error) {
	m := &membership{log: cfg.Logger.With("component", "membership"), events: make(chan memberlist.NodeEvent, 1024),
		acks: make(chan string, 256), probe: cfg.ProbeInterval, self: cfg.NodeName,
		notify: notify, meta: meta, members: map[string]*Member{}}
	mc, err := memberlistConfig(cfg)
	if err != nil {
		return nil, err
	}
	mc.Events = eventDelegate{ch: m.events}
	mc.Ping = pingDelegate{acks: m.acks}
	mc.Delegate = metaDelegate{m: m}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start memberlist on %s: %w", cfg.GossipAddr, err)
	}
	m.ml = ml
	// Read once: LocalNode's fields change under memberlist's lock when
	// the metadata is updated.
	n := ml.LocalNode()
	m.bound = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	return m, nil
}

// addr returns the bound gossip address.
func (m *membership) addr() string { return m.bound }

// setMeta replaces our metadata and gossips it.
func (m *membership) setMeta(f func(*NodeMeta)) {
	m.metaMu.Lock()
	f(&m.meta)
	m.metaMu.Unlock()
	if err := m.ml.UpdateNode(5 * time.Second); err != nil {
		m.log.Warn("gossip metadata update", "error", err)
	}
}

// pingDelegate reports acked probes. memberlist has no event for suspect
// members, and the only way to read its view (Members) hands out pointers
// it keeps writing under its own lock; so this node derives "suspect" from
// its own probes instead: a member is suspect when none of this node's
// probes to it was acked for suspectAfter. Only the member's name is read,
// which memberlist never changes.
type pingDelegate struct{ acks chan<- string }

func (pingDelegate) AckPayload() []byte { return nil }

func (d pingDelegate) NotifyPingComplete(other *memberlist.Node, _ time.Duration, _ []byte) {
	select {
	case d.acks <- other.Name:
	default: // a dropped ack only delays clearing a suspect state
	}
}

// suspectAfter is how long a member may go without an acked probe from
// this node before it is suspect: four full probe rounds (memberlist
// probes one member per interval, round robin, and stretches the interval
// when this node is itself slow) plus two intervals of slack.
func (m *membership) suspectAfter(others int) time.Duration {
	return (4*time.Duration(max(others, 1)) + 2) * m.probe
}

// loop applies memberlist events and probe acks until done closes.
func (m *membership) loop(done <-chan struct{}) {
	lastAck := map[string]time.Time{}
	t := time.NewTicker(m.probe)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case name := <-m.acks:
			lastAck[name] = time.Now()
			if mem, ok := m.get(name); ok && mem.Status == StatusSuspect {
				m.setStatus(name, StatusAlive)
			}
		case <-t.C:
			list := m.list()
			others := 0
			for _, mem := range list {
				if mem.Name != m.self && (mem.Status == StatusAlive || mem.Status == StatusSuspect) {
					others++
				}
			}
			limit := m.suspectAfter(others)
			now := time.Now()
			for _, mem := range list {
				if mem.Name == m.self || mem.Status != StatusAlive {
					continue
				}
				last, ok := lastAck[mem.Name]
				if !ok || last.Before(mem.Since) {
					last = mem.Since
				}
				if now.Sub(last) > limit {
					m.setStatus(mem.Name, StatusSuspect)
				}
			}
		case ev := <-m.events:
			status := StatusAlive
			if ev.Event == memberlist.NodeLeave {
				status = StatusDead
				if ev.Node.State == memberlist.StateLeft {
					status = StatusLeft
				}
			}
			m.set(ev.Node, status)
		}
	}
}

// reconnectLoop tries every interval to re-join the members it sees as
// dead, until done closes (Serf's reconnect). memberlist alone never talks
// to a node it declared dead again (it gossips to it only for
// GossipToTheDeadTime), so after a partition longer than that heals both
// sides would keep seeing the other dead, and a follower could not forward
// to a leader it sees dead. Found by the in-memory partition test.
func (m *membership) reconnectLoop(done <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		var addrs []string
		for _, mem := range m.list() {
			if mem.Status == StatusDead {
				addrs = append(addrs, mem.Addr)
			}
		}
		if len(addrs) == 0 {
			continue
		}
		if n, _ := m.ml.Join(addrs); n > 0 {
			m.log.Info("reconnected to failed members", "contacted", n)
		}
	}
}

func (m *membership) set(n *memberlist.Node, status string) {
	var meta NodeMeta
	if len(n.Meta) > 0 {
		if err := json.Unmarshal(n.Meta, &meta); err != nil {
			m.log.Warn("bad node metadata", "member", n.Name, "error", err)
		}
	}
	addr := net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	m.mu.Lock()
	cur, ok := m.members[n.Name]
	changed := !ok || cur.Status != status || cur.Addr != addr || cur.Meta != meta
	if !changed {
		m.mu.Unlock()
		return
	}
	if !ok || cur.Status != status {
		mem := &Member{Name: n.Name, Addr: addr, Status: status, Since: time.Now(), Meta: meta}
		m.members[n.Name] = mem
	} else {
		cur.Addr, cur.Meta = addr, meta
	}
	snap := *m.members[n.Name]
	m.mu.Unlock()
	if !ok || cur.Status != status {
		lvl := slog.LevelInfo
		if status == StatusDead || status == StatusSuspect {
			lvl = slog.LevelWarn
		}
		m.log.Log(nil, lvl, "member "+status, "member", n.Name, "addr", addr) //nolint:staticcheck
	}
	if m.notify != nil {
		m.notify(snap)
	}
}

// setStatus changes a known member's status (suspect <-> alive).
func (m *membership) setStatus(name, status string) {
	m.mu.Lock()
	cur, ok := m.members[name]
	if !ok || cur.Status == status {
		m.mu.Unlock()
		return
	}
	mem := &Member{Name: name, Addr: cur.Addr, Status: status, Since: time.Now(), Meta: cur.Meta}
	m.members[name] = mem
	snap := *mem
	m.mu.Unlock()
	lvl := slog.LevelInfo
	if status == StatusSuspect {
		lvl = slog.LevelWarn
	}
	m.log.Log(nil, lvl, "member "+status, "member", name, "addr", snap.Addr) //nolint:staticcheck
	if m.notify != nil {
		m.notify(snap)
	}
}

// list returns every member this node has seen, sorted by name.
func (m *membership) list() []Member {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Member, 0, len(m.members))
	for _, mem := range m.members {
		out = append(out, *mem)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (m *membership) get(name string) (Member, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	mem, ok := m.members[name]
	if !ok {
		return Member{}, false
	}
	return *mem, true
}

// leave announces a graceful departure and stops gossip.
func (m *membership) leave(timeout time.Duration) {
	if err := m.ml.Leave(timeout); err != nil {
		m.log.Warn("leave", "error", err)
	}
	if err := m.ml.Shutdown(); err != nil {
		m.log.Warn("memberlist shutdown", "error", err)
	}
}
