package cluster

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Alarm kinds raised by the Monitor. The set is bounded (it is a metric
// label); add new kinds here.
const (
	// AlarmNodeDown: memberlist declared the subject node dead (critical).
	AlarmNodeDown = "node_down"
	// AlarmNodeSuspect: memberlist suspects the subject node (warning).
	AlarmNodeSuspect = "node_suspect"
	// AlarmDiskSpace: the subject node's data directory is low on space.
	AlarmDiskSpace = "disk_space"
	// AlarmApplyLag: the subject node applies the log too far behind the
	// leader's commit index.
	AlarmApplyLag = "apply_lag"
	// AlarmQuorumLost: the subject node has not known a leader for a while.
	// It is a local alarm (Monitor.LocalAlarms): a node without quorum cannot
	// commit it.
	AlarmQuorumLost = "quorum_lost"
	// AlarmTrackingWrite: the subject node failed to write tracking
	// records during apply (warning); ingests are unaffected. Cleared
	// after MonitorConfig.TrackingClearAfter without new errors.
	AlarmTrackingWrite = "tracking_write"
)

// AlarmKinds lists every alarm kind, for metrics.
var AlarmKinds = []string{AlarmNodeDown, AlarmNodeSuspect, AlarmDiskSpace, AlarmApplyLag, AlarmQuorumLost, AlarmTrackingWrite}

// Alarm severities.
const (
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Limits of alarm fields and history.
const (
	// MaxAlarmID bounds an alarm id (and kind, subject) in bytes.
	MaxAlarmID = 256
	// MaxAlarmMessage bounds an alarm message or clear reason in bytes;
	// longer ones are truncated by the encoders.
	MaxAlarmMessage = 1024
	// MaxAlarmHistory is the number of cleared alarms the FSM keeps; older
	// ones are deleted in the batch that clears a newer one.
	MaxAlarmHistory = 1000
)

// ErrInvalidAlarm means an alarm command is malformed (empty or too long
// id, unknown severity).
var ErrInvalidAlarm = errors.New("cluster: invalid alarm")

// Alarm is one alarm, active or cleared. Alarms live in the FSM: they are
// raised and cleared through Raft (CmdAlarmRaise, CmdAlarmClear), so every
// node reports the same list; the Monitor's local alarms (quorum lost) are
// the exception.
//
// An alarm id is unique among active alarms: raising an active id is a
// no-op (the first RaisedAt stays), clearing an inactive id is a no-op.
// A cleared alarm moves to the history with ClearedAt set.
type Alarm struct {
	// ID is Kind + ":" + Subject, e.g. "node_down:n2".
	ID string `json:"id"`
	// Kind is one of the Alarm* kinds.
	Kind string `json:"kind"`
	// Subject is what the alarm is about, usually a node name.
	Subject string `json:"subject"`
	// Severity is SeverityWarning or SeverityCritical.
	Severity string `json:"severity"`
	// Message is a human-readable explanation.
	Message string `json:"message"`
	// RaisedAt is when the raising node decided to raise it; RaisedBy names
	// that node.
	RaisedAt time.Time `json:"raised_at"`
	RaisedBy string    `json:"raised_by"`
	// ClearedAt is nil while the alarm is active; ClearedBy and ClearReason
	// say who cleared it and why.
	ClearedAt   *time.Time `json:"cleared_at,omitempty"`
	ClearedBy   string     `json:"cleared_by,omitempty"`
	ClearReason string     `json:"clear_reason,omitempty"`
	// Local is true for alarms only this node reports (Monitor.LocalAlarms).
	Local bool `json:"local,omitempty"`
}

// AlarmID returns the id of the alarm of kind about subject.
func AlarmID(kind, subject string) string { return kind + ":" + subject }

// Active reports whether the alarm has not been cleared.
func (a *Alarm) Active() bool { return a.ClearedAt == nil }

func (a *Alarm) validate() error {
	switch {
	case a.ID == "" || len(a.ID) > MaxAlarmID:
		return fmt.Errorf("%w: id must be 1..%d bytes", ErrInvalidAlarm, MaxAlarmID)
	case a.Kind == "" || len(a.Kind) > MaxAlarmID || len(a.Subject) > MaxAlarmID:
		return fmt.Errorf("%w: kind must be 1..%d bytes, subject at most %d", ErrInvalidAlarm, MaxAlarmID, MaxAlarmID)
	case a.Severity != SeverityWarning && a.Severity != SeverityCritical:
		return fmt.Errorf("%w: severity %q is not %s or %s", ErrInvalidAlarm, a.Severity, SeverityWarning, SeverityCritical)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// AlarmEventType says what happened to an alarm.
type AlarmEventType string

// Alarm event types.
const (
	AlarmRaised  AlarmEventType = "raised"
	AlarmCleared AlarmEventType = "cleared"
)

// AlarmEvent reports one alarm raised or cleared by a committed entry (see
// FSM.SetAlarmObserver) or, with Index 0 and Alarm.Local set, a local alarm
// of the Monitor.
type AlarmEvent struct {
	Type AlarmEventType `json:"event"`
	// Alarm is the alarm after the change (ClearedAt set when cleared).
	Alarm Alarm `json:"alarm"`
	// Index is the Raft index of the entry that made the change; 0 for
	// local alarms.
	Index uint64 `json:"index"`
}

// AlarmMetrics exports the demandflow_alarms_active gauge (labels kind,
// severity). It reads the alarms at scrape time from the source set with
// SetSource, so it can never drift from the store (not even across a
// snapshot restore, which emits no events). Safe for concurrent use.
type AlarmMetrics struct {
	desc   *prometheus.Desc
	source atomic.Pointer[func() []Alarm]
}

// NewAlarmMetrics creates the alarm metrics and registers them with reg.
// Until SetSource is called every gauge reads 0.
func NewAlarmMetrics(reg prometheus.Registerer) *AlarmMetrics {
	m := &AlarmMetrics{desc: prometheus.NewDesc("demandflow_alarms_active",
		"Active alarms by kind and severity, replicated and local (quorum_lost).",
		[]string{"kind", "severity"}, nil)}
	reg.MustRegister(m)
	return m
}

// SetSource sets the function that lists the alarms to count; it is called
// on every scrape and must be cheap and safe for concurrent use. Typically
// the store's active alarms plus the Monitor's local ones.
func (m *AlarmMetrics) SetSource(active func() []Alarm) { m.source.Store(&active) }

// Describe implements prometheus.Collector.
func (m *AlarmMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.desc }

// Collect implements prometheus.Collector. Every known kind is exported for
// both severities (0 when none), so series do not appear and vanish.
func (m *AlarmMetrics) Collect(ch chan<- prometheus.Metric) {
	type key struct{ kind, sev string }
	counts := map[key]int{}
	for _, k := range AlarmKinds {
		counts[key{k, SeverityWarning}] = 0
		counts[key{k, SeverityCritical}] = 0
	}
	if src := m.source.Load(); src != nil {
		for _, a := range (*src)() {
			if a.Active() {
				counts[key{a.Kind, a.Severity}]++
			}
		}
	}
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := cmpString(a.kind, b.kind); c != 0 {
			return c
		}
		return cmpString(a.sev, b.sev)
	})
	for _, k := range keys {
		ch <- prometheus.MustNewConstMetric(m.desc, prometheus.GaugeValue, float64(counts[k]), k.kind, k.sev)
	}
}
