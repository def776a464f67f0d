package cluster

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FSMMetrics times the FSM's work: each applied command by type, and each
// apply batch's Pebble commit. They show where an ingest ack waits after
// its entry is in the log (a slow command, or a commit queued behind a
// fold). Timing never changes what is applied.
type FSMMetrics struct {
	apply  *prometheus.HistogramVec
	commit prometheus.Histogram
}

func newFSMMetrics() *FSMMetrics {
	buckets := prometheus.ExponentialBuckets(0.00025, 2, 14) // 0.25 ms .. 2 s
	return &FSMMetrics{
		apply: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "demandflow_fsm_apply_seconds",
			Help:    "Time the FSM spent applying one command entry, by command.",
			Buckets: buckets,
		}, []string{"command"}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "demandflow_fsm_commit_seconds",
			Help:    "Time of one apply batch's Pebble commit (and publication).",
			Buckets: buckets,
		}),
	}
}

func (m *FSMMetrics) observeApply(t CommandType, since time.Time) {
	m.apply.WithLabelValues(t.String()).Observe(time.Since(since).Seconds())
}

// Describe implements prometheus.Collector.
func (m *FSMMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.apply.Describe(ch)
	m.commit.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *FSMMetrics) Collect(ch chan<- prometheus.Metric) {
	m.apply.Collect(ch)
	m.commit.Collect(ch)
}

// FSMMetrics returns the timings of this node's FSM, to register.
func (c *Cluster) FSMMetrics() *FSMMetrics { return c.fsm.metrics }
