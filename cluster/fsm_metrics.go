package cluster

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// WriteMetrics time the write path after a request is validated: the
// Raft log's synced writes, each command the FSM applies, by type, each
// apply batch's Pebble commit, and the ingest parts whose object-index
// calls triggered a fold. They show where an ingest ack waits (a slow
// fsync, a slow command, a commit queued behind a fold). Timing never
// changes what is applied.
type WriteMetrics struct {
	logStore   prometheus.Histogram
	apply      *prometheus.HistogramVec
	commit     prometheus.Histogram
	objectFold prometheus.Histogram
}

func newWriteMetrics() *WriteMetrics {
	buckets := prometheus.ExponentialBuckets(0.00025, 2, 14) // 0.25 ms .. 2 s
	return &WriteMetrics{
		logStore: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "demandflow_raft_log_store_seconds",
			Help:    "Time of one synced write of entries to the Raft log.",
			Buckets: buckets,
		}),
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
		// Folds write and ingest the object index's run sstable on the
		// apply goroutine (three fsyncs among them), so every ack queued
		// behind one waits as long: 9-53 ms each under half load on a
		// 2-core VM (bench/RESULTS.md, session 11:49).
		objectFold: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "demandflow_fsm_object_fold_seconds",
			Help:    "Time the FSM spent tracking the objects of an ingest part whose calls triggered an object-index fold (runs written and ingested on the apply path).",
			Buckets: buckets,
		}),
	}
}

func (m *WriteMetrics) observeStore(_ int, d time.Duration) {
	m.logStore.Observe(d.Seconds())
}

func (m *WriteMetrics) observeApply(t CommandType, since time.Time) {
	m.apply.WithLabelValues(t.String()).Observe(time.Since(since).Seconds())
}

// Describe implements prometheus.Collector.
func (m *WriteMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.logStore.Describe(ch)
	m.apply.Describe(ch)
	m.commit.Describe(ch)
	m.objectFold.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *WriteMetrics) Collect(ch chan<- prometheus.Metric) {
	m.logStore.Collect(ch)
	m.apply.Collect(ch)
	m.commit.Collect(ch)
	m.objectFold.Collect(ch)
}

// WriteMetrics returns the timings of this node's write path, to register.
func (c *Cluster) WriteMetrics() *WriteMetrics { return c.fsm.metrics }
