package cluster

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/demandflow/demandflow/stream"
)

// Dirty marks: which series await a forecast refresh.
//
// A series is dirty from the first ingest that touches it until a forecast
// result computed from data at least as new as its newest touch is
// applied. The mark holds that newest touch: the Raft index of the part and
// its transaction (for the forecast tracking block); results carry the
// mark index their owner read before it read the history, and applying a
// result clears the mark only when the mark is not newer, so data that
// arrived during the fit keeps the series dirty (fsm_forecast.go).
//
// The marks are FSM state (every node holds the same set, an owner that
// dies leaves its dirty series to the survivors), but writing one Pebble
// key per touched series per ingest part cost as much as the observations
// themselves: a period-major feed touches every series in every part. So
// the committed marks live in memory (dirtyState, per dataset), and Pebble
// holds
//
//   - checkpointed marks, prefixDirty | dsid | series id -> index u64 |
//     tx id,
//   - a dirty log of the clears since the dataset's last checkpoint,
//     prefixDirtyLog | dsid | index u64 -> the series a forecast result at
//     that index cleared, with the result's data index (encodeDirtyClear),
//   - and, for every ingest part since the checkpoint that touched series,
//     an empty pending key prefixDirtyPending | dsid | index u64. The
//     touches themselves are not written: the part's Raft entry holds its
//     series, and Raft replays every entry after its last snapshot when a
//     node restarts. ApplyBatch hands the replayed entries that have a
//     pending key to replayDirty, which marks their series again (the
//     scheme of the staged blocks, obsstore.go "Volatile blocks").
//
// A checkpoint writes the mark (or its deletion) of every series changed
// since the last one, then deletes the log and the pending keys up to its
// index. It runs in the apply batch of the dataset's every
// dirtyCheckpointParts-th logged part or clear, before a forced refresh
// changes the marks, and at every Raft snapshot and Close (persistDirty),
// so Raft never truncates an entry whose touches only memory holds.
//
// After a restart Store.load reads the checkpointed marks and applies the
// logged clears; replayDirty then raises each replayed part's series to
// its index unless the log cleared the series at a later index
// (dirtyState.replayClears): the order apply saw. Reads of the marks wait
// for that replay (replayGate). Logs written before the pending keys
// existed also hold touch records (encoded tx id | series ids), and load
// replays those in order with the clears.
//
// Readers (the forecaster) see only committed marks: an apply batch stages
// its changes in forecastWork and publishes them after the Pebble commit,
// so a mark never names data that is not yet readable.

// dirtyCheckpointParts is the number of pending parts and logged clears
// after which the next one checkpoints the dataset's marks; it bounds the
// replay after a restart to that many parts. Every node checkpoints at the
// same indexes in apply, but also at its own snapshots, so the value only
// has to be the same for the nodes' stores to match key for key. A
// checkpoint of a period-major feed writes a mark per series: at 64 parts
// that was a tenth of a node's apply cost, at 1024 it is noise.
const dirtyCheckpointParts = 1024

// dirtyMark is a series' newest touch.
type dirtyMark struct {
	index uint64
	tx    string
}

// dirtyState is a dataset's committed dirty marks. marks is guarded by mu
// (the FSM goroutine writes after commits, the forecaster reads); logParts
// is touched by the FSM goroutine only.
type dirtyState struct {
	mu    sync.Mutex
	marks markTable

	logParts int // pending parts and dirty log records since the last checkpoint
	// What the next checkpoint must write, without reading the log back:
	// every mark changed since the last checkpoint either has an index
	// above cpIndex (a touch) or is in clearedSince (a clear).
	cpIndex      uint64
	clearedSince []uint64

	// replayClears holds, after a restart, the newest index at which the
	// dirty log cleared each series: a replayed touch older than that
	// clear was answered by it (replayDirty). Dropped at the next
	// checkpoint.
	replayClears map[uint64]uint64
	// verifyTouched is, with verifyDirtyCheckpoints, every series touched
	// since the last checkpoint (tests).
	verifyTouched []uint64
}

func newDirtyState() *dirtyState { return &dirtyState{} }

// get returns the committed mark of sid.
func (d *dirtyState) get(sid uint64) (dirtyMark, bool) {
	d.mu.Lock()
	m, ok := d.marks.Get(sid)
	d.mu.Unlock()
	return m, ok
}

// dirtyLogKey is prefixDirtyLog | dsid | index.
func dirtyLogKey(dsid uint32, index uint64) []byte {
	return binary.BigEndian.AppendUint64(dsPrefix(prefixDirtyLog, dsid), index)
}

// dirtyPendingKey is prefixDirtyPending | dsid | index.
func dirtyPendingKey(dsid uint32, index uint64) []byte {
	return binary.BigEndian.AppendUint64(dsPrefix(prefixDirtyPending, dsid), index)
}

// Dirty log record kinds (the first byte of the value).
const (
	dirtyLogTouch byte = 1 // an ingest part's touches (legacy: see pending keys)
	dirtyLogClear byte = 2 // a results command's cleared marks
)

// encodeDirtyLog encodes a touch record: kind dirtyLogTouch | uvarint
// len(tx) | tx | series ids as big-endian u64, sorted and distinct. Only
// stores written before the pending keys hold them; tests write them to
// check that such stores still load.
func encodeDirtyLog(tx string, sids []uint64) []byte {
	v := make([]byte, 0, 1+binary.MaxVarintLen64+len(tx)+8*len(sids))
	v = append(v, dirtyLogTouch)
	v = binary.AppendUvarint(v, uint64(len(tx)))
	v = append(v, tx...)
	for _, s := range sids {
		v = binary.BigEndian.AppendUint64(v, s)
	}
	return v
}

// encodeDirtyClear encodes a clear record: kind dirtyLogClear | pairs of
// big-endian u64 (series id, the result's data index), in result order.
func encodeDirtyClear(cleared []clearedMark) []byte {
	v := make([]byte, 0, 1+16*len(cleared))
	v = append(v, dirtyLogClear)
	for _, c := range cleared {
		v = binary.BigEndian.AppendUint64(v, c.sid)
		v = binary.BigEndian.AppendUint64(v, c.dataIndex)
	}
	return v
}

// clearedMark is a mark a forecast result cleared.
type clearedMark struct{ sid, dataIndex uint64 }

// walkDirtyLog decodes one record: touch is called with the tx id and each
// series of a touch record, clear with each (series, data index) pair of a
// clear record.
func walkDirtyLog(v []byte, touch func(tx string, sid uint64), clear func(sid, dataIndex uint64)) error {
	if len(v) > 0 && v[0] == dirtyLogClear {
		if (len(v)-1)%16 != 0 {
			return fmt.Errorf("dirty log clear: %d bytes", len(v))
		}
		for i := 1; i < len(v); i += 16 {
			clear(binary.BigEndian.Uint64(v[i:]), binary.BigEndian.Uint64(v[i+8:]))
		}
		return nil
	}
	tx, raw, err := decodeDirtyLog(v)
	if err != nil {
		return err
	}
	for i := 0; i < len(raw); i += 8 {
		touch(tx, binary.BigEndian.Uint64(raw[i:]))
	}
	return nil
}

// replay applies the record at index to d's marks as apply did: a touch
// raises each series' mark to index (newest wins), a clear deletes each
// named mark that is not newer than the result's data index (and the
// series go to clearedSince, for the next checkpoint, and to replayClears,
// for the touches Raft replays).
func (d *dirtyState) replay(index uint64, v []byte) error {
	return walkDirtyLog(v, func(tx string, sid uint64) {
		if cur, ok := d.marks.Get(sid); !ok || cur.index < index {
			d.marks.Set(sid, dirtyMark{index: index, tx: tx})
		}
		if verifyDirtyCheckpoints {
			d.verifyTouched = append(d.verifyTouched, sid)
		}
	}, func(sid, di uint64) {
		d.clearedSince = append(d.clearedSince, sid)
		if m, ok := d.marks.Get(sid); ok && m.index <= di {
			d.marks.Delete(sid)
		}
		if d.replayClears == nil {
			d.replayClears = map[uint64]uint64{}
		}
		d.replayClears[sid] = index // records come in index order
	})
}

// replayTouch marks sids (a replayed part's series) dirty at index, as
// apply did, unless the dirty log cleared a series at a later index: the
// result that did so answered this touch, which then came before the
// clear. Raft replays in index order, so a touch that passes is the
// newest so far.
func (d *dirtyState) replayTouch(index uint64, tx string, sids []uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.marks.SetTx(index, tx)
	for _, sid := range sids {
		if c, ok := d.replayClears[sid]; ok && c > index {
			continue
		}
		if cur, ok := d.marks.Get(sid); !ok || cur.index < index {
			d.marks.Put(sid, index)
		}
	}
	if verifyDirtyCheckpoints {
		d.verifyTouched = append(d.verifyTouched, sids...)
	}
}

// decodeDirtyLog returns a touch record's tx id and its series ids (raw, 8
// bytes each; a sub-slice of v).
func decodeDirtyLog(v []byte) (tx string, sids []byte, err error) {
	if len(v) < 2 || v[0] != dirtyLogTouch {
		return "", nil, errors.New("bad dirty log version")
	}
	n, w := binary.Uvarint(v[1:])
	if w <= 0 || uint64(len(v)-1-w) < n {
		return "", nil, errors.New("bad dirty log tx")
	}
	rest := v[1+w:]
	tx, sids = string(rest[:n]), rest[n:]
	if len(sids)%8 != 0 {
		return "", nil, fmt.Errorf("dirty log: %d series bytes", len(sids))
	}
	return tx, sids, nil
}

// touch is one ingest part's dirty marks, staged in forecastWork until it
// is materialized (merged into the overlay) or published after commit.
type touch struct {
	e     *dsEntry
	index uint64
	tx    string
	sids  []uint64 // sorted, distinct
}

// markDirty records that one part touched the series sids (sorted,
// distinct; retained) at index, by transaction txID. Pebble gets only the
// part's pending key: a restart marks the series again from the replayed
// entry (replayDirty).
func (ac *applyCtx) markDirty(e *dsEntry, index uint64, txID string, sids []uint64) {
	if len(sids) == 0 {
		return
	}
	w := ac.forecastWork()
	w.touches = append(w.touches, touch{e: e, index: index, tx: txID, sids: sids})
	if verifyDirtyCheckpoints {
		w.verify = append(w.verify, touch{e: e, index: index, sids: sids})
	}
	ac.appendDirtyLog(e, index, func() { must(ac.b.Set(dirtyPendingKey(e.id, index), nil, nil)) })
}

// logClears records the marks a results command at index cleared (already
// staged with setDirty), so a replay after a restart clears them too.
func (ac *applyCtx) logClears(e *dsEntry, index uint64, cleared []clearedMark) {
	if len(cleared) == 0 {
		return
	}
	if ac.appendDirtyLog(e, index, func() { must(ac.b.Set(dirtyLogKey(e.id, index), encodeDirtyClear(cleared), nil)) }) {
		w := ac.forecastWork()
		for _, c := range cleared {
			w.clearedLogged[e.id] = append(w.clearedLogged[e.id], c.sid)
		}
	}
}

// appendDirtyLog calls write, which writes the pending key or the log
// record of a change at index, or checkpoints instead when it would be
// the dirtyCheckpointParts-th since the last checkpoint (the change is
// already staged). It reports whether it wrote.
func (ac *applyCtx) appendDirtyLog(e *dsEntry, index uint64, write func()) bool {
	w := ac.forecastWork()
	n := w.logParts(e) + 1
	if n >= dirtyCheckpointParts {
		ac.checkpointDirty(e, index)
		return false
	}
	write()
	w.logged[e.id] = n
	return true
}

// logParts returns the dataset's dirty log length as of this point of the
// batch.
func (w *forecastWork) logParts(e *dsEntry) int {
	if n, ok := w.logged[e.id]; ok {
		return n
	}
	return e.dirty.logParts
}

// materialize merges the staged touches of dataset e into the overlay, in
// order, so dirtyIndex sees them; needed before anything but a touch reads
// or changes the dataset's marks.
func (ac *applyCtx) materialize(e *dsEntry) {
	w := ac.forecastWork()
	kept := w.touches[:0]
	for _, t := range w.touches {
		if t.e.id != e.id {
			kept = append(kept, t)
			continue
		}
		for _, sid := range t.sids {
			ref := seriesRef{e.id, sid}
			if cur, ok := ac.dirtyMark(e, ref); !ok || cur.index < t.index {
				w.dirty[ref] = dirtyMark{index: t.index, tx: t.tx}
			}
		}
	}
	clear(w.touches[len(kept):])
	w.touches = kept
}

// dirtyMark returns the series' mark as of this point of the batch,
// ignoring touches not yet materialized.
func (ac *applyCtx) dirtyMark(e *dsEntry, ref seriesRef) (dirtyMark, bool) {
	if ac.fc != nil {
		if m, ok := ac.fc.dirty[ref]; ok {
			return m, m.index != 0
		}
	}
	return e.dirty.get(ref.sid)
}

// dirtyIndex returns the series' dirty index as of this point of the
// batch; callers materialize the dataset first.
func (ac *applyCtx) dirtyIndex(e *dsEntry, ref seriesRef) (uint64, bool) {
	m, ok := ac.dirtyMark(e, ref)
	return m.index, ok
}

// setDirty stages a mark change (index 0 deletes); the dataset must have
// been materialized and is checkpointed by the caller.
func (ac *applyCtx) setDirty(ref seriesRef, m dirtyMark) {
	ac.forecastWork().dirty[ref] = m
}

// checkpointDirty writes the current mark of every series changed since
// the last checkpoint (committed touches and clears, and this batch's
// changes), then deletes the log and the pending keys up to index.
func (ac *applyCtx) checkpointDirty(e *dsEntry, index uint64) {
	ac.materialize(e)
	w := ac.forecastWork()
	var sids []uint64
	if w.checkpointed[e.id] == 0 {
		// Marks changed by earlier batches since the last checkpoint (this
		// batch's are in the overlay), found from the committed marks: the
		// pending parts' series are only in the Raft log, and reading the
		// old touch records back cost up to 64 x 10,000 series ids to read
		// and sort.
		d := e.dirty
		d.mu.Lock()
		for sid, m := range d.marks.All {
			if m.index > d.cpIndex {
				sids = append(sids, sid)
			}
		}
		d.mu.Unlock()
		sids = append(sids, d.clearedSince...)
		if verifyDirtyCheckpoints {
			ac.verifyCheckpointSeries(e, sids)
		}
	}
	for ref := range w.dirty {
		if ref.dsid == e.id {
			sids = append(sids, ref.sid)
		}
	}
	slices.Sort(sids)
	sids = slices.Compact(sids)
	var v []byte
	for _, sid := range sids {
		ref := seriesRef{e.id, sid}
		m, ok := ac.dirtyMark(e, ref)
		if !ok {
			must(ac.b.Delete(dirtyKey(e.id, sid), nil))
			continue
		}
		v = binary.BigEndian.AppendUint64(v[:0], m.index)
		v = append(v, m.tx...)
		must(ac.b.Set(dirtyKey(e.id, sid), v, nil))
	}
	lo, hi := dsRange(prefixDirtyLog, e.id)
	must(ac.b.DeleteRange(lo, hi, nil))
	must(ac.b.DeleteRange(dirtyPendingKey(e.id, 0), dirtyPendingKey(e.id, index+1), nil))
	w.logged[e.id] = 0
	w.checkpointed[e.id]++
	w.cpIndex[e.id] = index
	w.clearedLogged[e.id] = nil
}

// verifyDirtyCheckpoints makes every checkpoint check its series against
// the log (tests turn it on).
var verifyDirtyCheckpoints bool

// verifyCheckpointSeries panics unless sids names the same series as the
// dataset's dirty log and the touches of earlier batches since the last
// checkpoint (the rule checkpointDirty relies on: see dirtyState).
func (ac *applyCtx) verifyCheckpointSeries(e *dsEntry, sids []uint64) {
	e.dirty.mu.Lock()
	logged := slices.Clone(e.dirty.verifyTouched)
	e.dirty.mu.Unlock()
	lo, hi := dsRange(prefixDirtyLog, e.id)
	err := ac.s.scan(context.Background(), lo, hi, func(k, v []byte) (bool, error) {
		return true, walkDirtyLog(v, func(_ string, sid uint64) { logged = append(logged, sid) },
			func(sid, _ uint64) { logged = append(logged, sid) })
	})
	if err != nil {
		panic(fmt.Sprintf("cluster: fsm: read dirty log of dataset %d: %v", e.id, err))
	}
	slices.Sort(logged)
	logged = slices.Compact(logged)
	got := slices.Compact(slices.Sorted(slices.Values(sids)))
	if !slices.Equal(logged, got) {
		panic(fmt.Sprintf("cluster: fsm: dirty checkpoint of dataset %d: %d series from the marks, %d in the log",
			e.id, len(got), len(logged)))
	}
}

// publishDirty applies the batch's committed mark changes to the datasets'
// in-memory marks: the overlay, then the touches logged after it.
func (ac *applyCtx) publishDirty() {
	w := ac.fc
	if w == nil {
		return
	}
	byDS := map[uint32]*dsEntry{}
	for _, t := range w.touches {
		byDS[t.e.id] = t.e
	}
	for ref := range w.dirty {
		if _, ok := byDS[ref.dsid]; !ok {
			if e := ac.entryByID(ref.dsid); e != nil {
				byDS[ref.dsid] = e
			}
		}
	}
	for _, e := range byDS {
		d := e.dirty
		d.mu.Lock()
		for ref, m := range w.dirty {
			if ref.dsid != e.id {
				continue
			}
			if m.index == 0 {
				d.marks.Delete(ref.sid)
			} else {
				d.marks.Set(ref.sid, m)
			}
		}
		// The touches left are later, in apply order, than every mark
		// published before and every overlay change above, so each one
		// overwrites: one map write per series, not a read and a write
		// (3-4% of a node's CPU under period-major ingest).
		for _, t := range w.touches {
			if t.e.id != e.id {
				continue
			}
			d.marks.SetTx(t.index, t.tx)
			for _, sid := range t.sids {
				d.marks.Put(sid, t.index)
			}
		}
		d.mu.Unlock()
	}
	entry := func(id uint32) *dsEntry {
		if e := byDS[id]; e != nil {
			return e
		}
		return ac.entryByID(id)
	}
	for id, n := range w.logged {
		if e := entry(id); e != nil {
			e.dirty.logParts = n
		}
	}
	for id, i := range w.cpIndex {
		if e := entry(id); e != nil {
			d := e.dirty
			d.cpIndex, d.clearedSince, d.replayClears = i, nil, nil
			d.mu.Lock()
			d.verifyTouched = nil
			d.mu.Unlock()
		}
	}
	for _, t := range w.verify {
		if i, ok := w.cpIndex[t.e.id]; ok && t.index <= i {
			continue
		}
		t.e.dirty.mu.Lock()
		t.e.dirty.verifyTouched = append(t.e.dirty.verifyTouched, t.sids...)
		t.e.dirty.mu.Unlock()
	}
	for id, c := range w.clearedLogged {
		if e := entry(id); e != nil {
			e.dirty.clearedSince = append(e.dirty.clearedSince, c...)
		}
	}
}

// entryByID returns the dataset with id as of this point of the batch.
func (ac *applyCtx) entryByID(id uint32) *dsEntry {
	for _, e := range ac.datasets {
		if e != nil && e.id == id {
			return e
		}
	}
	ac.s.mu.RLock()
	defer ac.s.mu.RUnlock()
	for _, e := range ac.s.datasets {
		if e.id == id {
			return e
		}
	}
	return nil
}

// loadDirty rebuilds e's marks from the checkpointed marks and the dirty
// log (Store.load), and counts the pending parts, whose touches the Raft
// replay brings back (replayDirty). It returns the newest pending part's
// index (0 for none): reads of the marks wait until the replay has
// passed it.
func (s *Store) loadDirty(e *dsEntry) (uint64, error) {
	d := newDirtyState()
	lo, hi := dsRange(prefixDirty, e.id)
	err := s.scan(context.Background(), lo, hi, func(k, v []byte) (bool, error) {
		if len(k) != 13 {
			return true, nil // the refresh index
		}
		if len(v) < 8 {
			return false, fmt.Errorf("corrupt dirty mark %x", k)
		}
		m := dirtyMark{index: binary.BigEndian.Uint64(v), tx: string(v[8:])}
		d.marks.Set(binary.BigEndian.Uint64(k[5:]), m)
		// With an empty log nothing changed since the checkpoint.
		d.cpIndex = max(d.cpIndex, m.index)
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	// Every change since the checkpoint is at or after the first log
	// record or pending part.
	var first, newest uint64
	lo, hi = dsRange(prefixDirtyPending, e.id)
	err = s.scan(context.Background(), lo, hi, func(k, _ []byte) (bool, error) {
		if len(k) != 13 {
			return false, fmt.Errorf("corrupt dirty pending key %x", k)
		}
		index := binary.BigEndian.Uint64(k[5:])
		if first == 0 {
			first = index
		}
		newest = index
		d.logParts++
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	lo, hi = dsRange(prefixDirtyLog, e.id)
	firstLog := true
	err = s.scan(context.Background(), lo, hi, func(k, v []byte) (bool, error) {
		if len(k) != 13 {
			return false, fmt.Errorf("corrupt dirty log key %x", k)
		}
		index := binary.BigEndian.Uint64(k[5:])
		if firstLog && (first == 0 || index < first) {
			first = index
		}
		firstLog = false
		if err := d.replay(index, v); err != nil {
			return false, fmt.Errorf("%x: %w", k, err)
		}
		d.logParts++
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	if first != 0 {
		d.cpIndex = first - 1
	}
	e.dirty = d
	return newest, nil
}

// replayDirty marks again the series of a replayed ingest entry (at or
// below the applied index) whose pending key says its touches were only in
// memory when the node stopped. The pending key is under the dataset's
// current id, so entries of an earlier incarnation of the name, and
// duplicates, which touched nothing, have none.
func (f *FSM) replayDirty(re *replayedEntry) {
	hdr, ok := re.header()
	if !ok {
		return
	}
	e := f.store.dataset(hdr.Dataset)
	if e == nil {
		return
	}
	if _, ok := f.store.get(dirtyPendingKey(e.id, re.l.Index)); !ok {
		return
	}
	_, recs, err := re.decode(f.mem)
	if err != nil {
		divergence(CmdIngest, re.l.Index, fmt.Errorf("dirty pending key: %w", err))
	}
	var sids []uint64
	for _, r := range recs {
		sids = append(sids, r.Column(stream.IdxSeriesID).(*array.Uint64).Uint64Values()...)
	}
	slices.Sort(sids)
	e.dirty.replayTouch(re.l.Index, trackedTx(e, hdr.TxID), slices.Compact(sids))
}

// persistDirty checkpoints, at the applied index, the marks of every
// dataset with pending parts or logged clears, so that a snapshot carries
// them and Raft may truncate the entries they came from. It runs on the
// apply goroutine (FSM.Snapshot) or after it stopped (Close), and only
// once the replay after a restart is done: until then the marks lack the
// touches still to be replayed.
func (s *Store) persistDirty() error {
	s.mu.RLock()
	var todo []*dsEntry
	for _, e := range s.datasets {
		if e.dirty.logParts > 0 {
			todo = append(todo, e)
		}
	}
	s.mu.RUnlock()
	if len(todo) == 0 {
		return nil
	}
	ac := s.newApplyCtx(0)
	defer ac.close()
	index := s.AppliedIndex()
	for _, e := range todo {
		ac.checkpointDirty(e, index)
	}
	if err := ac.b.Commit(s.wo); err != nil {
		return fmt.Errorf("checkpoint dirty marks: %w", err)
	}
	ac.publishDirty()
	return nil
}

// sortedMarks returns a copy of the committed marks in series-id order.
func (d *dirtyState) sortedMarks() []DirtyMark {
	d.mu.Lock()
	out := make([]DirtyMark, 0, d.marks.Len())
	for sid, m := range d.marks.All {
		out = append(out, DirtyMark{SeriesID: sid, Index: m.index, TxID: m.tx})
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b DirtyMark) int { return cmp.Compare(a.SeriesID, b.SeriesID) })
	return out
}
