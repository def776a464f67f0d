package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// memberChanged fans a member change out to observers and wakes the
// leader's reconcile.
func (c *Cluster) memberChanged(m Member) {
	for _, f := range c.observers {
		f(m)
	}
	select {
	case c.reconcileCh <- struct{}{}:
	default:
	}
}

// bootstrapLoop bootstraps a new cluster once BootstrapExpect servers with
// the same expect value are seen and none of them already has Raft state
// (Nomad's maybeBootstrap). Every node computes the same configuration
// (sorted by name), so simultaneous bootstraps agree. A conflicting expect
// value aborts bootstrapping.
func (c *Cluster) bootstrapLoop() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	lastConflict := ""
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if ok, _ := raft.HasExistingState(c.logStore, c.logStore, c.snaps); ok {
			c.markBooted()
			return
		}
		if c.raft.Leader() != "" { // added to an existing cluster
			c.markBooted()
			return
		}
		// A node told to join must see the cluster before deciding: with
		// the default expect of 1 it would otherwise bootstrap alone
		// before the join's gossip arrived.
		if !c.joined.Load() {
			continue
		}
		var servers []raft.Server
		conflict, booted := "", false
		for _, m := range c.members.list() {
			if m.Status != StatusAlive || m.Meta.Role != "server" {
				continue
			}
			if m.Meta.Boot {
				booted = true
			}
			if m.Meta.Expect != c.cfg.BootstrapExpect {
				conflict = fmt.Sprintf("%s expects %d servers, this node %d", m.Name, m.Meta.Expect, c.cfg.BootstrapExpect)
			}
			servers = append(servers, raft.Server{ID: raft.ServerID(m.Name), Address: raft.ServerAddress(m.Meta.Raft), Suffrage: raft.Voter})
		}
		if booted {
			continue // an existing cluster will add us
		}
		if conflict != "" {
			if conflict != lastConflict { // once per conflict, not every tick
				c.log.Error("not bootstrapping: conflicting bootstrap_expect", "detail", conflict)
				lastConflict = conflict
			}
			continue
		}
		if len(servers) < c.cfg.BootstrapExpect {
			continue
		}
		slices.SortFunc(servers, func(a, b raft.Server) int { return strings.Compare(string(a.ID), string(b.ID)) })
		f := c.raft.BootstrapCluster(raft.Configuration{Servers: servers})
		if err := f.Error(); err != nil && err != raft.ErrCantBootstrap {
			c.log.Error("bootstrap", "error", err)
			continue
		}
		c.log.Info("bootstrapped cluster", "servers", len(servers))
		c.markBooted()
		return
	}
}

func (c *Cluster) markBooted() {
	c.members.setMeta(func(m *NodeMeta) { m.Boot = true })
}

// monitorLeadership starts a leaderLoop when this node becomes leader and
// stops it when it is no longer (raft.Config.NotifyCh is buffered; LeaderCh
// may drop signals, STYLE §6).
func (c *Cluster) monitorLeadership() {
	var (
		stop context.CancelFunc
		done chan struct{}
	)
	for {
		select {
		case <-c.ctx.Done():
			if stop != nil {
				stop()
				<-done
			}
			return
		case isLeader := <-c.notifyCh:
			switch {
			case isLeader && stop == nil:
				var lctx context.Context
				lctx, stop = context.WithCancel(c.ctx)
				done = make(chan struct{})
				go func() {
					defer close(done)
					c.leaderLoop(lctx)
				}()
			case !isLeader && stop != nil:
				stop()
				<-done
				stop = nil
			}
		}
	}
}

// leaderLoop establishes leadership (a barrier so the FSM is current) and
// reconciles members into the Raft configuration on a timer and on member
// events, until ctx ends.
func (c *Cluster) leaderLoop(ctx context.Context) {
	c.log.Info("became leader", "term", c.raft.CurrentTerm())
	if err := c.waitApplied(c.raft.Barrier(10 * time.Second)); err != nil {
		if ctx.Err() != nil || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrRaftShutdown) {
			// Leadership already ended (often: the node is closing);
			// there is nothing to hand over.
			c.log.Warn("leader barrier failed; leadership already lost", "error", err)
			return
		}
		c.log.Error("leader barrier failed; transferring leadership", "error", err)
		if err := c.waitApplied(c.raft.LeadershipTransfer()); err != nil {
			c.log.Warn("leadership transfer failed", "error", err)
		}
		return
	}
	for _, f := range c.leaderObs {
		f(true)
	}
	defer func() {
		for _, f := range c.leaderObs {
			f(false)
		}
		c.log.Info("leadership lost")
	}()
	firstSeen := map[string]time.Time{}
	t := time.NewTicker(c.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		c.reconcile(firstSeen)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.reconcileCh:
		}
	}
}

// maxVoters caps the voter count (Consul-style: odd, at most 5).
const maxVoters = 5

// reconcile makes the Raft configuration follow membership: alive servers
// join as non-voters and are promoted after StabilizationTime keeping an
// odd voter count up to 5; servers that left are removed; failed servers
// are removed after DeadServerGrace; a server back at a new address is
// updated.
func (c *Cluster) reconcile(firstSeen map[string]time.Time) {
	cf := c.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return
	}
	servers := map[string]raft.Server{}
	voters := 0
	for _, s := range cf.Configuration().Servers {
		servers[string(s.ID)] = s
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	now := time.Now()
	var promotable []string
	for _, m := range c.members.list() {
		if m.Meta.Role != "server" || m.Name == c.cfg.NodeName {
			continue
		}
		s, in := servers[m.Name]
		switch m.Status {
		case StatusAlive, StatusSuspect:
			addr := raft.ServerAddress(m.Meta.Raft)
			if !in {
				if err := c.raft.AddNonvoter(raft.ServerID(m.Name), addr, 0, 5*time.Second).Error(); err != nil {
					c.log.Warn("add non-voter", "member", m.Name, "error", err)
					continue
				}
				c.log.Info("added server as non-voter", "member", m.Name, "raft", addr)
				firstSeen[m.Name] = now
				continue
			}
			if s.Address != addr && addr != "" {
				var f raft.IndexFuture
				if s.Suffrage == raft.Voter {
					f = c.raft.AddVoter(s.ID, addr, 0, 5*time.Second)
				} else {
					f = c.raft.AddNonvoter(s.ID, addr, 0, 5*time.Second)
				}
				if err := f.Error(); err != nil {
					c.log.Warn("update server address", "member", m.Name, "error", err)
				} else {
					c.log.Info("server moved to a new address", "member", m.Name, "raft", addr)
				}
			}
			if s.Suffrage == raft.Nonvoter && m.Status == StatusAlive {
				if _, ok := firstSeen[m.Name]; !ok {
					firstSeen[m.Name] = now
				}
				if now.Sub(firstSeen[m.Name]) >= c.cfg.StabilizationTime {
					promotable = append(promotable, m.Name)
				}
			}
		case StatusLeft:
			if in {
				if err := c.raft.RemoveServer(s.ID, 0, 5*time.Second).Error(); err == nil {
					c.log.Info("removed server that left", "member", m.Name)
				}
			}
			delete(firstSeen, m.Name)
		case StatusDead:
			if in && now.Sub(m.Since) >= c.cfg.DeadServerGrace {
				if err := c.raft.RemoveServer(s.ID, 0, 5*time.Second).Error(); err == nil {
					c.log.Warn("removed failed server after grace period", "member", m.Name, "grace", c.cfg.DeadServerGrace)
				}
			}
			delete(firstSeen, m.Name)
		}
	}
	slices.Sort(promotable)
	target := min(maxVoters, voters+len(promotable))
	if target%2 == 0 {
		target--
	}
	for i := 0; i < target-voters && i < len(promotable); i++ {
		name := promotable[i]
		s := servers[name]
		if err := c.raft.AddVoter(s.ID, s.Address, 0, 5*time.Second).Error(); err != nil {
			c.log.Warn("promote to voter", "member", name, "error", err)
			continue
		}
		c.log.Info("promoted server to voter", "member", name)
	}
}

func writeSnapshotHeader(w io.Writer, meta *raft.SnapshotMeta) error {
	b, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func readSnapshotHeader(r io.Reader) (*raft.SnapshotMeta, io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot file: no header line: %w", err)
	}
	var meta raft.SnapshotMeta
	if err := json.Unmarshal(line, &meta); err != nil || meta.Index == 0 {
		return nil, nil, fmt.Errorf("snapshot file: bad header (not written by snapshot save?)")
	}
	return &meta, br, nil
}
