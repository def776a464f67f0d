package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeRaft stands in for Raft under the Monitor: Apply decodes alarm
// entries into a map. The local view (Alarms, AppliedIndex) follows the
// committed state unless stale is set, then only after catchUp.
type fakeRaft struct {
	mu          sync.Mutex
	committed   map[string]Alarm
	index       uint64
	local       map[string]Alarm
	applied     uint64
	stale       bool
	leader      bool
	leaderKnown bool
	commitIndex uint64 // 0 = index
	failNext    int
	proposals   []string
	members     []MemberEvent
	free, total uint64
	localEvents []string
}

func newFakeRaft() *fakeRaft {
	return &fakeRaft{committed: map[string]Alarm{}, local: map[string]Alarm{}, leaderKnown: true, free: 50, total: 100}
}

func (f *fakeRaft) apply(ctx context.Context, entry []byte) (any, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failNext > 0 {
		f.failNext--
		return nil, 0, errors.New("no leader")
	}
	t, h, _, err := splitEntry(entry)
	if err != nil {
		return nil, 0, err
	}
	f.index++
	switch t {
	case CmdAlarmRaise:
		var hdr alarmRaiseHeader
		if err := decodeHeader(h, &hdr); err != nil {
			return nil, 0, err
		}
		f.proposals = append(f.proposals, "raise "+hdr.ID)
		if _, ok := f.committed[hdr.ID]; !ok {
			f.committed[hdr.ID] = Alarm{ID: hdr.ID, Kind: hdr.Kind, Subject: hdr.Subject, Severity: hdr.Severity,
				Message: hdr.Message, RaisedAt: time.Unix(0, hdr.At), RaisedBy: hdr.By}
		}
	case CmdAlarmClear:
		var hdr alarmClearHeader
		if err := decodeHeader(h, &hdr); err != nil {
			return nil, 0, err
		}
		f.proposals = append(f.proposals, "clear "+hdr.ID)
		delete(f.committed, hdr.ID)
	default:
		return nil, 0, fmt.Errorf("unexpected command %s", t)
	}
	if !f.stale {
		f.catchUpLocked()
	}
	return nil, f.index, nil
}

func (f *fakeRaft) catchUpLocked() {
	f.local = maps.Clone(f.committed)
	f.applied = f.index
}

func (f *fakeRaft) catchUp() { f.mu.Lock(); f.catchUpLocked(); f.mu.Unlock() }

func (f *fakeRaft) set(fn func(f *fakeRaft)) { f.mu.Lock(); fn(f); f.mu.Unlock() }

// take returns and forgets the proposals so far.
func (f *fakeRaft) take() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := strings.Join(f.proposals, ", ")
	f.proposals = nil
	return p
}

func (f *fakeRaft) activeIDs() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(slices.Sorted(maps.Keys(f.committed)), ", ")
}

func (f *fakeRaft) config(t *testing.T) MonitorConfig {
	lock := func() func() { f.mu.Lock(); return f.mu.Unlock }
	return MonitorConfig{
		NodeName:          "n1",
		Apply:             f.apply,
		IsLeader:          func() bool { defer lock()(); return f.leader },
		LeaderKnown:       func() bool { defer lock()(); return f.leaderKnown },
		AppliedIndex:      func() uint64 { defer lock()(); return f.applied },
		LeaderCommitIndex: func() uint64 { defer lock()(); return max(f.commitIndex, f.index) },
		Alarms:            func() []Alarm { defer lock()(); return slices.Collect(maps.Values(f.local)) },
		Members:           func() []MemberEvent { defer lock()(); return slices.Clone(f.members) },
		DataDir:           "/data",
		DiskUsage: func(string) (uint64, uint64, error) {
			defer lock()()
			return f.free, f.total, nil
		},
		OnLocal: func(ev AlarmEvent) {
			defer lock()()
			f.localEvents = append(f.localEvents, string(ev.Type)+" "+ev.Alarm.ID)
		},
		Logger: testLogger(t),
	}
}

// startMonitor starts a Monitor inside the current bubble and stops it at
// the end of the bubble's test.
func startMonitor(t *testing.T, cfg MonitorConfig) *Monitor {
	m := NewMonitor(cfg)
	m.Start(t.Context())
	t.Cleanup(func() {
		if err := m.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	synctest.Wait()
	return m
}

func check(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

func TestMonitorMemberAlarms(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeRaft()
		f.leader = true
		m := startMonitor(t, f.config(t))
		check(t, "at start", f.take(), "")

		start := time.Now()
		m.MemberEvent(MemberEvent{Name: "n2", Status: MemberDead})
		synctest.Wait()
		check(t, "dead", f.take(), "raise node_down:n2")
		if d := time.Since(start); d > 6*time.Second {
			t.Errorf("dead node reported after %v, want within 6s", d)
		}
		m.MemberEvent(MemberEvent{Name: "n3", Status: MemberSuspect})
		synctest.Wait()
		check(t, "suspect", f.take(), "raise node_suspect:n3")
		check(t, "active", f.activeIDs(), "node_down:n2, node_suspect:n3")

		time.Sleep(5 * time.Second) // ticks re-propose nothing
		synctest.Wait()
		check(t, "steady", f.take(), "")

		m.MemberEvent(MemberEvent{Name: "n2", Status: MemberAlive})
		m.MemberEvent(MemberEvent{Name: "n3", Status: MemberDead})
		synctest.Wait()
		check(t, "rejoin and suspect->dead", f.take(), "clear node_down:n2, raise node_down:n3, clear node_suspect:n3")
		m.MemberEvent(MemberEvent{Name: "n3", Status: MemberLeft})
		synctest.Wait()
		check(t, "left", f.take(), "clear node_down:n3")
		check(t, "active at end", f.activeIDs(), "")
		time.Sleep(3 * time.Second)
		synctest.Wait()
		check(t, "after left", f.take(), "")
	})
}

// TestMonitorNewLeaderReconciles: a follower proposes no member alarms; on
// gaining leadership it raises node_down for the old leader (which died
// before proposing anything) and clears a stale suspect alarm.
func TestMonitorNewLeaderReconciles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeRaft()
		f.committed["node_suspect:n3"] = Alarm{ID: "node_suspect:n3"}
		f.catchUp()
		m := startMonitor(t, f.config(t))
		m.MemberEvent(MemberEvent{Name: "n2", Status: MemberDead})
		time.Sleep(2 * time.Second)
		synctest.Wait()
		check(t, "follower", f.take(), "")

		f.set(func(f *fakeRaft) {
			f.leader = true
			f.members = []MemberEvent{{Name: "n1", Status: MemberAlive}, {Name: "n2", Status: MemberDead}, {Name: "n3", Status: MemberAlive}}
		})
		m.LeadershipChanged(true)
		synctest.Wait()
		check(t, "new leader", f.take(), "raise node_down:n2, clear node_suspect:n3")
	})
}

func TestMonitorRetriesFailedProposals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeRaft()
		f.leader = true
		m := startMonitor(t, f.config(t))
		f.set(func(f *fakeRaft) { f.failNext = 2 })
		start := time.Now()
		m.MemberEvent(MemberEvent{Name: "n2", Status: MemberDead})
		synctest.Wait()
		check(t, "first try fails", f.activeIDs(), "")
		for f.activeIDs() == "" && time.Since(start) < time.Minute {
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("raised after %v, want on the second tick after two failures (<= 2s)", d)
		}
		check(t, "proposals", f.take(), "raise node_down:n2")
	})
}

func TestMonitorDiskSpace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeRaft() // a follower: node alarms do not need leadership
		f.free, f.total = 3, 100
		startMonitor(t, f.config(t))
		check(t, "low", f.take(), "raise disk_space:n1")
		for _, tc := range []struct {
			free uint64
			want string
		}{{4, ""}, {5, ""}, {7, "clear disk_space:n1"}, {50, ""}, {1, "raise disk_space:n1"}} {
			f.set(func(f *fakeRaft) { f.free, f.total = tc.free, 100 })
			time.Sleep(time.Second)
			synctest.Wait()
			check(t, fmt.Sprintf("free %d%%", tc.free), f.take(), tc.want)
		}
	})
}

func TestMonitorApplyLag(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeRaft()
		f.commitIndex = DefaultApplyLagMax + 100
		m := NewMonitor(f.config(t))
		m.Start(t.Context())
		defer m.Shutdown(context.Background())
		time.Sleep(DefaultApplyLagFor - time.Second)
		synctest.Wait()
		check(t, "lag not long enough", f.take(), "")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		check(t, "lag too long", f.take(), "raise apply_lag:n1")
		time.Sleep(5 * time.Second)
		synctest.Wait()
		check(t, "still lagging", f.take(), "")
		f.set(func(f *fakeRaft) { f.commitIndex = 0 })
		time.Sleep(time.Second)
		synctest.Wait()
		check(t, "caught up", f.take(), "clear apply_lag:n1")
	})
}

// TestMonitorWaitsForLocalApply: a node whose store lags behind its own
// committed proposal does not propose it again.
func TestMonitorWaitsForLocalApply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeRaft()
		f.stale = true
		f.free = 1
		startMonitor(t, f.config(t))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		check(t, "stale store", f.take(), "raise disk_space:n1")
		f.catchUp()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		check(t, "caught up", f.take(), "")
	})
}

func TestMonitorQuorumLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeRaft()
		f.leaderKnown = false
		f.free = 1 // would raise disk_space, but nothing can commit
		m := startMonitor(t, f.config(t))
		m.MemberEvent(MemberEvent{Name: "n2", Status: MemberDead})
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := m.LocalAlarms(); len(got) != 0 {
			t.Fatalf("local alarms after 2s: got %+v, want none", got)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		got := m.LocalAlarms()
		if len(got) != 1 || got[0].ID != "quorum_lost:n1" || got[0].Severity != SeverityCritical || !got[0].Local {
			t.Fatalf("local alarms after 4s: got %+v, want quorum_lost:n1", got)
		}
		check(t, "proposals without quorum", f.take(), "")

		f.set(func(f *fakeRaft) { f.leaderKnown = true })
		time.Sleep(time.Second)
		synctest.Wait()
		if got := m.LocalAlarms(); len(got) != 0 {
			t.Fatalf("local alarms with a leader: got %+v, want none", got)
		}
		check(t, "proposals with quorum", f.take(), "raise disk_space:n1")
		f.mu.Lock()
		check(t, "local events", strings.Join(f.localEvents, ", "), "raised quorum_lost:n1, cleared quorum_lost:n1")
		f.mu.Unlock()
	})
}

func TestMonitorConfigValidate(t *testing.T) {
	f := newFakeRaft()
	for _, tc := range []struct {
		name string
		mod  func(c *MonitorConfig)
	}{
		{"no name", func(c *MonitorConfig) { c.NodeName = "" }},
		{"no apply", func(c *MonitorConfig) { c.Apply = nil }},
		{"negative interval", func(c *MonitorConfig) { c.Interval = -1 }},
		{"disk free 1", func(c *MonitorConfig) { c.DiskFreeMin = 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := f.config(t)
			tc.mod(&c)
			if err := c.Validate(); err == nil {
				t.Fatal("got nil, want an error")
			}
		})
	}
	if err := f.config(t).Validate(); err != nil {
		t.Fatalf("valid config: got %v", err)
	}
	if d := DefaultMonitorConfig(); d.Interval != time.Second || d.ApplyLagMax != 10000 || d.DiskFreeMin != 0.05 || d.QuorumLostAfter != 3*time.Second {
		t.Fatalf("defaults: got %+v", d)
	}
}

func TestMonitorStatfs(t *testing.T) {
	free, total, err := statfsUsage(t.TempDir())
	if err != nil || total == 0 || free > total {
		t.Fatalf("got free %d total %d err %v, want 0 <= free <= total > 0", free, total, err)
	}
}
