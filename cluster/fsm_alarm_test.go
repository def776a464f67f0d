package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

func mustRaise(t testing.TB, kind, subject, sev string, at time.Time) []byte {
	t.Helper()
	e, err := EncodeAlarmRaise(Alarm{Kind: kind, Subject: subject, Severity: sev, Message: kind + " " + subject,
		RaisedAt: at, RaisedBy: "n1"})
	if err != nil {
		t.Fatalf("encode raise: %v", err)
	}
	return e
}

func mustClear(t testing.TB, id string, at time.Time) []byte {
	t.Helper()
	e, err := EncodeAlarmClear(id, at, "n1", "fixed")
	if err != nil {
		t.Fatalf("encode clear: %v", err)
	}
	return e
}

// recordEvents installs an observer that records events and checks that
// the store already shows each event's effect (the observer runs after the
// commit is published).
func recordEvents(t *testing.T, f *FSM) *[]AlarmEvent {
	var evs []AlarmEvent
	f.SetAlarmObserver(func(ev AlarmEvent) {
		active := false
		for _, a := range f.Store().ActiveAlarms() {
			active = active || a.ID == ev.Alarm.ID
		}
		if want := ev.Type == AlarmRaised; active != want && want {
			t.Errorf("observer for %s %s: store does not show it yet", ev.Type, ev.Alarm.ID)
		}
		if f.Store().AppliedIndex() < ev.Index {
			t.Errorf("observer for index %d ran before applied index %d was published", ev.Index, f.Store().AppliedIndex())
		}
		evs = append(evs, ev)
	})
	return &evs
}

func TestAlarmFSMRaiseClear(t *testing.T) {
	s := openMemStore(t, nil)
	a := newApplier(t, s)
	evs := recordEvents(t, a.f)
	t1, t2, t3 := testTime, testTime.Add(time.Minute), testTime.Add(2*time.Minute)

	if resp := a.one(mustRaise(t, AlarmNodeDown, "n2", SeverityCritical, t1)); resp != nil {
		t.Fatalf("raise: got %v, want nil", resp)
	}
	a.one(mustRaise(t, AlarmNodeDown, "n2", SeverityCritical, t2)) // no-op: keeps t1
	a.one(mustClear(t, "node_suspect:n2", t2))                     // no-op: not active
	active, history, err := s.Alarms()
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 1 || len(history) != 0 {
		t.Fatalf("got %d active, %d history, want 1, 0", len(active), len(history))
	}
	want := Alarm{ID: "node_down:n2", Kind: AlarmNodeDown, Subject: "n2", Severity: SeverityCritical,
		Message: "node_down n2", RaisedAt: t1, RaisedBy: "n1"}
	if got := active[0]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("active: got %+v, want %+v", got, want)
	}

	a.one(mustClear(t, "node_down:n2", t3))
	a.one(mustClear(t, "node_down:n2", t3)) // no-op
	active, history, _ = s.Alarms()
	if len(active) != 0 || len(history) != 1 {
		t.Fatalf("after clear: got %d active, %d history, want 0, 1", len(active), len(history))
	}
	h := history[0]
	if h.ClearedAt == nil || !h.ClearedAt.Equal(t3) || h.ClearedBy != "n1" || h.ClearReason != "fixed" || !h.RaisedAt.Equal(t1) {
		t.Fatalf("history: got %+v, want cleared at %v by n1 (fixed), raised at %v", h, t3, t1)
	}

	if len(*evs) != 2 {
		t.Fatalf("events: got %d (%+v), want 2", len(*evs), *evs)
	}
	if e := (*evs)[0]; e.Type != AlarmRaised || e.Index != 1 || e.Alarm.ID != "node_down:n2" {
		t.Errorf("event 0: got %+v, want raised at index 1", e)
	}
	if e := (*evs)[1]; e.Type != AlarmCleared || e.Index != 4 || e.Alarm.ClearedAt == nil {
		t.Errorf("event 1: got %+v, want cleared at index 4", e)
	}

	// Raising it again after the clear is a new alarm.
	a.one(mustRaise(t, AlarmNodeDown, "n2", SeverityCritical, t3))
	active, _, _ = s.Alarms()
	if len(active) != 1 || !active[0].RaisedAt.Equal(t3) {
		t.Fatalf("re-raise: got %+v, want raised at %v", active, t3)
	}
}

func TestAlarmFSMOneBatch(t *testing.T) {
	s := openMemStore(t, nil)
	a := newApplier(t, s)
	evs := recordEvents(t, a.f)
	t1, t2 := testTime, testTime.Add(time.Second)
	a.batch(
		mustRaise(t, AlarmDiskSpace, "n1", SeverityCritical, t1),
		mustRaise(t, AlarmDiskSpace, "n1", SeverityCritical, t2), // no-op within the batch
		mustClear(t, "disk_space:n1", t2),
		mustRaise(t, AlarmDiskSpace, "n1", SeverityCritical, t2),
		mustRaise(t, AlarmApplyLag, "n3", SeverityWarning, t1),
	)
	active, history, _ := s.Alarms()
	if len(active) != 2 || active[0].ID != "apply_lag:n3" || active[1].ID != "disk_space:n1" || !active[1].RaisedAt.Equal(t2) {
		t.Fatalf("active: got %+v, want apply_lag:n3 then disk_space:n1 raised at %v", active, t2)
	}
	if len(history) != 1 || !history[0].RaisedAt.Equal(t1) {
		t.Fatalf("history: got %+v, want the first disk_space alarm", history)
	}
	var types []string
	for _, e := range *evs {
		types = append(types, fmt.Sprintf("%s@%d", e.Type, e.Index))
	}
	if got, want := strings.Join(types, " "), "raised@1 cleared@3 raised@4 raised@5"; got != want {
		t.Fatalf("events: got %s, want %s", got, want)
	}
}

func TestAlarmFSMInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    Alarm
	}{
		{"no kind", Alarm{Subject: "n1", Severity: SeverityWarning}},
		{"bad severity", Alarm{Kind: AlarmDiskSpace, Subject: "n1", Severity: "fatal"}},
		{"long id", Alarm{Kind: strings.Repeat("k", MaxAlarmID), Subject: "n1", Severity: SeverityWarning}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := EncodeAlarmRaise(tc.a); !errors.Is(err, ErrInvalidAlarm) {
				t.Fatalf("got %v, want ErrInvalidAlarm", err)
			}
		})
	}
	if _, err := EncodeAlarmClear("", testTime, "n1", ""); !errors.Is(err, ErrInvalidAlarm) {
		t.Fatalf("clear empty id: got %v, want ErrInvalidAlarm", err)
	}
	// A committed malformed raise (an encoder bypassed) is a business
	// rejection, the same on every node.
	e, _ := encodeEntry(CmdAlarmRaise, &alarmRaiseHeader{ID: "x:y", Kind: "x", Subject: "y", Severity: "bad"}, nil)
	s := openMemStore(t, nil)
	if err, _ := newApplier(t, s).one(e).(error); !errors.Is(err, ErrInvalidAlarm) {
		t.Fatalf("apply: got %v, want ErrInvalidAlarm", err)
	}
	if active, _, _ := s.Alarms(); len(active) != 0 {
		t.Fatalf("active: got %+v, want none", active)
	}
	// Long messages are truncated.
	e, err := EncodeAlarmRaise(Alarm{Kind: AlarmDiskSpace, Subject: "n1", Severity: SeverityWarning,
		Message: strings.Repeat("m", 2*MaxAlarmMessage)})
	if err != nil {
		t.Fatal(err)
	}
	newApplier(t, s).one(e)
	if active, _, _ := s.Alarms(); len(active) != 1 || len(active[0].Message) != MaxAlarmMessage {
		t.Fatalf("got %+v, want one alarm with a %d byte message", active, MaxAlarmMessage)
	}
}

func countKeys(t *testing.T, s *Store, prefix byte) int {
	t.Helper()
	n := 0
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
	if err != nil {
		t.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAlarmFSMHistoryBounded(t *testing.T) {
	fs := vfs.NewMem()
	s := openMemStore(t, fs)
	a := newApplier(t, s)
	const total = MaxAlarmHistory + 37
	var entries [][]byte
	for i := range total {
		id := fmt.Sprintf("n%d", i)
		at := testTime.Add(time.Duration(i) * time.Second)
		entries = append(entries, mustRaise(t, AlarmNodeDown, id, SeverityCritical, at), mustClear(t, "node_down:"+id, at))
		if len(entries) >= 100 || i == total-1 {
			a.batch(entries...)
			entries = nil
		}
	}
	_, history, _ := s.Alarms()
	if len(history) != MaxAlarmHistory {
		t.Fatalf("history: got %d, want %d", len(history), MaxAlarmHistory)
	}
	if got, want := history[0].Subject, fmt.Sprintf("n%d", total-1); got != want {
		t.Errorf("newest: got %s, want %s", got, want)
	}
	if got, want := history[len(history)-1].Subject, fmt.Sprintf("n%d", total-MaxAlarmHistory); got != want {
		t.Errorf("oldest: got %s, want %s", got, want)
	}
	if n := countKeys(t, s, prefixAlarmHist); n != MaxAlarmHistory {
		t.Errorf("history keys: got %d, want %d", n, MaxAlarmHistory)
	}
	if n := countKeys(t, s, prefixAlarm); n != 0 {
		t.Errorf("active keys: got %d, want 0", n)
	}

	// Reopening rebuilds the same state from Pebble.
	a.one(mustRaise(t, AlarmApplyLag, "n1", SeverityWarning, testTime))
	wantA, wantH, _ := s.Alarms()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openMemStore(t, fs)
	gotA, gotH, _ := s2.Alarms()
	if fmt.Sprint(gotA) != fmt.Sprint(wantA) || fmt.Sprint(gotH) != fmt.Sprint(wantH) {
		t.Fatalf("after reopen: state differs:\ngot  %v\nwant %v", gotA, wantA)
	}
}

// TestAlarmFSMDeterministic applies the same entries in different batch
// splits to two stores and compares their keyspaces.
func TestAlarmFSMDeterministic(t *testing.T) {
	var entries [][]byte
	for i := range 30 {
		id := fmt.Sprintf("n%d", i%4)
		at := testTime.Add(time.Duration(i) * time.Second)
		if i%3 == 2 {
			entries = append(entries, mustClear(t, "node_down:"+id, at))
		} else {
			entries = append(entries, mustRaise(t, AlarmNodeDown, id, SeverityCritical, at))
		}
	}
	s1, s2 := openMemStore(t, nil), openMemStore(t, nil)
	a1, a2 := newApplier(t, s1), newApplier(t, s2)
	for _, e := range entries {
		a1.one(e)
	}
	a2.batch(entries[:7]...)
	a2.batch(entries[7:]...)
	if d1, d2 := dumpKeyspace(t, s1), dumpKeyspace(t, s2); d1 != d2 {
		t.Fatalf("keyspaces differ:\n%s\nvs\n%s", d1, d2)
	}
}

func TestAlarmFSMReplaySkipped(t *testing.T) {
	s := openMemStore(t, nil)
	a := newApplier(t, s)
	e := mustRaise(t, AlarmNodeDown, "n2", SeverityCritical, testTime)
	a.one(e)
	evs := recordEvents(t, a.f)
	// Raft replays index 1 after a restart: skipped, no event.
	a.f.ApplyBatch([]*raft.Log{{Index: 1, Term: 1, Type: raft.LogCommand, Data: mustClear(t, "node_down:n2", testTime)}})
	if len(*evs) != 0 {
		t.Fatalf("events on replay: got %+v, want none", *evs)
	}
	if active, _, _ := s.Alarms(); len(active) != 1 {
		t.Fatalf("active: got %+v, want the alarm", active)
	}
}

func TestAlarmSnapshotRestore(t *testing.T) {
	src := openMemStore(t, nil)
	a := newApplier(t, src)
	a.batch(
		mustRaise(t, AlarmNodeDown, "n2", SeverityCritical, testTime),
		mustRaise(t, AlarmDiskSpace, "n1", SeverityCritical, testTime.Add(time.Second)),
		mustRaise(t, AlarmNodeSuspect, "n3", SeverityWarning, testTime),
	)
	a.one(mustClear(t, "node_suspect:n3", testTime.Add(time.Minute)))
	a.one(mustCreate(t, testSchema("sales", ""))) // alarms live beside other state
	snap, err := a.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dst := openMemStore(t, nil)
	d := newApplier(t, dst)
	d.one(mustRaise(t, AlarmApplyLag, "old", SeverityWarning, testTime)) // replaced by the restore
	if err := d.f.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if d1, d2 := dumpKeyspace(t, src), dumpKeyspace(t, dst); d1 != d2 {
		t.Fatalf("keyspaces differ after restore:\n%s\nvs\n%s", d1, d2)
	}
	wantA, wantH, _ := src.Alarms()
	gotA, gotH, _ := dst.Alarms()
	if fmt.Sprint(gotA) != fmt.Sprint(wantA) || fmt.Sprint(gotH) != fmt.Sprint(wantH) {
		t.Fatalf("alarms after restore:\ngot  %v %v\nwant %v %v", gotA, gotH, wantA, wantH)
	}
	if len(gotA) != 2 || len(gotH) != 1 {
		t.Fatalf("got %d active, %d history, want 2, 1", len(gotA), len(gotH))
	}
	// Applying on after the restore works on the restored state.
	d.idx = dst.AppliedIndex()
	d.one(mustClear(t, "node_down:n2", testTime.Add(time.Hour)))
	if gotA, gotH, _ = dst.Alarms(); len(gotA) != 1 || len(gotH) != 2 {
		t.Fatalf("after clear: got %d active, %d history, want 1, 2", len(gotA), len(gotH))
	}
}

// gaugeValues gathers reg and returns "kind/severity" -> value of
// demandflow_alarms_active.
func gaugeValues(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "demandflow_alarms_active" {
			continue
		}
		for _, m := range mf.GetMetric() {
			lv := map[string]string{}
			for _, l := range m.GetLabel() {
				lv[l.GetName()] = l.GetValue()
			}
			out[lv["kind"]+"/"+lv["severity"]] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestAlarmMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewAlarmMetrics(reg)
	if got := gaugeValues(t, reg); len(got) != 2*len(AlarmKinds) {
		t.Fatalf("series without source: got %d, want %d", len(got), 2*len(AlarmKinds))
	}
	s := openMemStore(t, nil)
	a := newApplier(t, s)
	a.batch(
		mustRaise(t, AlarmNodeDown, "n2", SeverityCritical, testTime),
		mustRaise(t, AlarmNodeDown, "n3", SeverityCritical, testTime),
		mustRaise(t, AlarmNodeSuspect, "n4", SeverityWarning, testTime),
	)
	local := []Alarm{{ID: "quorum_lost:n1", Kind: AlarmQuorumLost, Subject: "n1", Severity: SeverityCritical, Local: true}}
	m.SetSource(func() []Alarm { return append(s.ActiveAlarms(), local...) })
	want := map[string]float64{}
	for _, k := range AlarmKinds {
		want[k+"/warning"], want[k+"/critical"] = 0, 0
	}
	want["node_down/critical"], want["node_suspect/warning"], want["quorum_lost/critical"] = 2, 1, 1
	if got := gaugeValues(t, reg); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	a.one(mustClear(t, "node_down:n2", testTime))
	want["node_down/critical"] = 1
	if got := gaugeValues(t, reg); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after clear: got %v, want %v", got, want)
	}
}
