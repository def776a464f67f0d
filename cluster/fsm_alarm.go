package cluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Replicated alarms. Active alarms are stored under prefixAlarm | id, cleared
// ones under prefixAlarmHist | clear index (the Raft index of the clearing
// entry, unique and increasing), so the history is in clearing order and
// trimming it to MaxAlarmHistory is one DeleteRange. The store keeps the
// whole alarm state (at most a few active alarms plus MaxAlarmHistory
// cleared ones) in memory as an immutable alarmState, swapped after each
// commit that changed it, so reads take no lock and touch no Pebble.

// alarmWire is an Alarm as stored (msgpack; times as unix ns, ClearedAt 0
// while active).
type alarmWire struct {
	ID          string `codec:"id"`
	Kind        string `codec:"kind"`
	Subject     string `codec:"subj"`
	Severity    string `codec:"sev"`
	Message     string `codec:"msg"`
	RaisedAt    int64  `codec:"at"`
	RaisedBy    string `codec:"by"`
	ClearedAt   int64  `codec:"cleared_at"`
	ClearedBy   string `codec:"cleared_by"`
	ClearReason string `codec:"reason"`
}

func wireOf(a *Alarm) *alarmWire {
	w := &alarmWire{ID: a.ID, Kind: a.Kind, Subject: a.Subject, Severity: a.Severity, Message: a.Message,
		RaisedAt: a.RaisedAt.UnixNano(), RaisedBy: a.RaisedBy, ClearedBy: a.ClearedBy, ClearReason: a.ClearReason}
	if a.ClearedAt != nil {
		w.ClearedAt = a.ClearedAt.UnixNano()
	}
	return w
}

func (w *alarmWire) alarm() Alarm {
	a := Alarm{ID: w.ID, Kind: w.Kind, Subject: w.Subject, Severity: w.Severity, Message: w.Message,
		RaisedAt: time.Unix(0, w.RaisedAt).UTC(), RaisedBy: w.RaisedBy, ClearedBy: w.ClearedBy, ClearReason: w.ClearReason}
	if w.ClearedAt != 0 {
		t := time.Unix(0, w.ClearedAt).UTC()
		a.ClearedAt = &t
	}
	return a
}

func alarmKey(id string) []byte { return append([]byte{prefixAlarm}, id...) }

func alarmHistKey(index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixAlarmHist}, index)
}

// histAlarm is one cleared alarm and the index that cleared it.
type histAlarm struct {
	index uint64
	a     Alarm
}

// alarmState is the alarm state of one committed index. Once published
// (Store.alarms) it is never modified.
type alarmState struct {
	active  map[string]Alarm
	history []histAlarm // ascending clear index, at most MaxAlarmHistory
}

func (st *alarmState) clone() *alarmState {
	return &alarmState{active: maps.Clone(st.active), history: slices.Clone(st.history)}
}

// alarmWork is the alarm part of one ApplyBatch: a private copy of the
// state and the events to report after the commit.
type alarmWork struct {
	st     *alarmState
	events []AlarmEvent
}

func (ac *applyCtx) alarmWork() *alarmWork {
	if ac.alarms == nil {
		ac.alarms = &alarmWork{st: ac.s.alarmState().clone()}
	}
	return ac.alarms
}

// publishAlarms makes the batch's alarm state visible; called by commit
// after the Pebble commit and before the applied index is published.
func (ac *applyCtx) publishAlarms() {
	if ac.alarms != nil {
		ac.s.alarms.Store(ac.alarms.st)
	}
}

// applyAlarmRaise raises an alarm unless its id is active. Response: nil,
// or an error wrapping ErrInvalidAlarm for a malformed alarm.
func (f *FSM) applyAlarmRaise(ac *applyCtx, index uint64, h []byte) any {
	var hdr alarmRaiseHeader
	if err := decodeHeader(h, &hdr); err != nil {
		divergence(CmdAlarmRaise, index, err)
	}
	a := Alarm{ID: hdr.ID, Kind: hdr.Kind, Subject: hdr.Subject, Severity: hdr.Severity, Message: hdr.Message,
		RaisedAt: time.Unix(0, hdr.At).UTC(), RaisedBy: hdr.By}
	if err := a.validate(); err != nil {
		return err
	}
	w := ac.alarmWork()
	if _, ok := w.st.active[a.ID]; ok {
		return nil
	}
	must(ac.b.Set(alarmKey(a.ID), msgpackEncode(wireOf(&a)), nil))
	w.st.active[a.ID] = a
	w.events = append(w.events, AlarmEvent{Type: AlarmRaised, Alarm: a, Index: index})
	return nil
}

// applyAlarmClear moves an active alarm to the history and trims the
// history to MaxAlarmHistory. Clearing an inactive id is a no-op. Response:
// nil.
func (f *FSM) applyAlarmClear(ac *applyCtx, index uint64, h []byte) any {
	var hdr alarmClearHeader
	if err := decodeHeader(h, &hdr); err != nil {
		divergence(CmdAlarmClear, index, err)
	}
	w := ac.alarmWork()
	a, ok := w.st.active[hdr.ID]
	if !ok {
		return nil
	}
	at := time.Unix(0, hdr.At).UTC()
	a.ClearedAt, a.ClearedBy, a.ClearReason = &at, hdr.By, hdr.Reason
	must(ac.b.Delete(alarmKey(a.ID), nil))
	must(ac.b.Set(alarmHistKey(index), msgpackEncode(wireOf(&a)), nil))
	delete(w.st.active, a.ID)
	w.st.history = append(w.st.history, histAlarm{index: index, a: a})
	if n := len(w.st.history) - MaxAlarmHistory; n > 0 {
		must(ac.b.DeleteRange([]byte{prefixAlarmHist}, alarmHistKey(w.st.history[n].index), nil))
		w.st.history = slices.Clone(w.st.history[n:])
	}
	w.events = append(w.events, AlarmEvent{Type: AlarmCleared, Alarm: a, Index: index})
	return nil
}

// SetAlarmObserver sets fn to be called with every alarm raised or cleared,
// after the batch that did it is committed; nil removes it. fn runs on the
// FSM goroutine in log order, so it must not block (hand slow work such as
// webhook delivery to another goroutine, see Notifier.Deliver) and must not
// call back into the FSM. Entries replayed at startup at or below the
// stored applied index are skipped by ApplyBatch, so they are not reported
// again; entries after it (not yet in the store when a node stopped) are
// applied and reported again, so observers see an event at least once. A
// snapshot restore reports no events (read the store afterwards).
//
// The FSM itself logs every event at Info ("alarm raised", "alarm
// cleared") on every node, whether or not an observer is set.
func (f *FSM) SetAlarmObserver(fn func(ev AlarmEvent)) {
	if fn == nil {
		f.alarmObs.Store(nil)
		return
	}
	f.alarmObs.Store(&fn)
}

// alarmsCommitted logs and reports the alarm events of a committed batch.
func (f *FSM) alarmsCommitted(ac *applyCtx) {
	if ac.alarms == nil || len(ac.alarms.events) == 0 {
		return
	}
	obs := f.alarmObs.Load()
	for _, ev := range ac.alarms.events {
		a := &ev.Alarm
		if ev.Type == AlarmRaised {
			f.logger.Info("alarm raised", "alarm", a.ID, "severity", a.Severity, "message", a.Message,
				"raised_by", a.RaisedBy, "raft_index", ev.Index)
		} else {
			f.logger.Info("alarm cleared", "alarm", a.ID, "severity", a.Severity, "reason", a.ClearReason,
				"cleared_by", a.ClearedBy, "raft_index", ev.Index)
		}
		if obs != nil {
			(*obs)(ev)
		}
	}
}

// alarmState returns the committed alarm state (never nil).
func (s *Store) alarmState() *alarmState {
	if st := s.alarms.Load(); st != nil {
		return st
	}
	return &alarmState{active: map[string]Alarm{}}
}

// loadAlarms rebuilds the in-memory alarm state from Pebble (open, restore).
func (s *Store) loadAlarms() error {
	st := &alarmState{active: map[string]Alarm{}}
	ctx := context.Background()
	err := s.scan(ctx, []byte{prefixAlarm}, []byte{prefixAlarm + 1}, func(k, v []byte) (bool, error) {
		var w alarmWire
		if err := decodeHeader(v, &w); err != nil {
			return false, fmt.Errorf("alarm %q: %w", k[1:], err)
		}
		st.active[w.ID] = w.alarm()
		return true, nil
	})
	if err != nil {
		return err
	}
	err = s.scan(ctx, []byte{prefixAlarmHist}, []byte{prefixAlarmHist + 1}, func(k, v []byte) (bool, error) {
		var w alarmWire
		if len(k) != 9 {
			return false, fmt.Errorf("corrupt alarm history key %x", k)
		}
		if err := decodeHeader(v, &w); err != nil {
			return false, fmt.Errorf("alarm history %x: %w", k, err)
		}
		st.history = append(st.history, histAlarm{index: binary.BigEndian.Uint64(k[1:]), a: w.alarm()})
		return true, nil
	})
	if err != nil {
		return err
	}
	s.alarms.Store(st)
	return nil
}

// Alarms returns the active alarms, oldest raised first (ties by id), and
// the history of cleared alarms, most recently cleared first (at most
// MaxAlarmHistory). The slices are the caller's. It reads an in-memory copy
// of the committed state, is cheap and safe for concurrent use with apply;
// a reader that saw AppliedIndex i before calling Alarms gets the state of
// i or later. The error is reserved for future storage reads and is nil
// today.
func (s *Store) Alarms() (active, history []Alarm, err error) {
	st := s.alarmState()
	active = sortedActive(st)
	history = make([]Alarm, len(st.history))
	for i, h := range st.history {
		history[len(st.history)-1-i] = h.a
	}
	return active, history, nil
}

// ActiveAlarms returns the active alarms in the order of Alarms. It suits
// MonitorConfig.Alarms and AlarmMetrics.SetSource.
func (s *Store) ActiveAlarms() []Alarm { return sortedActive(s.alarmState()) }

func sortedActive(st *alarmState) []Alarm {
	out := slices.Collect(maps.Values(st.active))
	sortAlarms(out)
	return out
}

func sortAlarms(as []Alarm) {
	slices.SortFunc(as, func(a, b Alarm) int {
		if c := a.RaisedAt.Compare(b.RaisedAt); c != 0 {
			return c
		}
		return cmpString(a.ID, b.ID)
	})
}
