package node

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/demandflow/demandflow/cluster"
)

// raftCollector exposes this node's Raft and membership state at scrape
// time (per node, unlike go-metrics' process-global registry).
type raftCollector struct {
	cl                                                 *cluster.Cluster
	leader, term, lastIndex, commitIndex, applied, fsm *prometheus.Desc
	lag, peers, voters, members                        *prometheus.Desc
}

func newRaftCollector(cl *cluster.Cluster) *raftCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &raftCollector{cl: cl,
		leader:      d("demandflow_raft_leader", "1 if this node is the Raft leader."),
		term:        d("demandflow_raft_term", "Current Raft term."),
		lastIndex:   d("demandflow_raft_last_index", "Last index in the Raft log."),
		commitIndex: d("demandflow_raft_commit_index", "Raft commit index known to this node."),
		applied:     d("demandflow_raft_applied_index", "Raft applied index (including no-op entries)."),
		fsm:         d("demandflow_fsm_applied_index", "Last command entry applied to the FSM."),
		lag:         d("demandflow_raft_apply_lag_entries", "Commit index minus applied index."),
		peers:       d("demandflow_raft_peers", "Servers in the Raft configuration."),
		voters:      d("demandflow_raft_voters", "Voters in the Raft configuration."),
		members:     d("demandflow_members", "Gossip members by status.", "status"),
	}
}

func (c *raftCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.leader, c.term, c.lastIndex, c.commitIndex, c.applied, c.fsm, c.lag, c.peers, c.voters, c.members} {
		ch <- d
	}
}

func (c *raftCollector) Collect(ch chan<- prometheus.Metric) {
	info, err := c.cl.RaftInfo()
	if err != nil {
		return
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	leader := 0.0
	if info.State == "Leader" || info.State == "Standalone" {
		leader = 1
	}
	g(c.leader, leader)
	g(c.term, float64(info.Term))
	g(c.lastIndex, float64(info.LastIndex))
	g(c.commitIndex, float64(info.CommitIndex))
	g(c.applied, float64(info.AppliedIndex))
	g(c.fsm, float64(info.FSMIndex))
	lag := 0.0
	if info.CommitIndex > info.AppliedIndex {
		lag = float64(info.CommitIndex - info.AppliedIndex)
	}
	g(c.lag, lag)
	voters := 0
	for _, p := range info.Peers {
		if p.Suffrage == "Voter" {
			voters++
		}
	}
	g(c.peers, float64(len(info.Peers)))
	g(c.voters, float64(voters))
	counts := map[string]int{cluster.StatusAlive: 0, cluster.StatusSuspect: 0, cluster.StatusDead: 0, cluster.StatusLeft: 0}
	for _, m := range c.cl.Members() {
		counts[m.Status]++
	}
	for st, k := range counts {
		g(c.members, float64(k), st)
	}
}
