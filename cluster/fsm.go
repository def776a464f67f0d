package cluster

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"

	"github.com/demandflow/demandflow/internal/bufpool"
	"github.com/demandflow/demandflow/tracking"
)

// FSM is the replicated state machine: it applies committed log entries to
// its Store. It implements raft.FSM and raft.BatchingFSM; Apply, ApplyBatch,
// Snapshot and Restore must be called from one goroutine at a time (Raft's
// FSM goroutine, or Local), while the Store's read methods may be called
// concurrently.
//
// Apply is deterministic: given the same entries in the same order every
// node reaches the same state. Business rejections (dataset exists, unknown
// dataset, schema changed) are error values in the response slot; entries
// that cannot be decoded, unknown non-ignorable commands and storage
// failures panic, because continuing would let replicas diverge.
type FSM struct {
	store  *Store
	logger *slog.Logger
	// mem allocates the records decoded from entries (bufpool: they are
	// released within the apply, so their buffers are recycled).
	mem memory.Allocator

	batches atomic.Int64 // ApplyBatch calls that committed a Pebble batch

	alarmObs atomic.Pointer[func(AlarmEvent)] // see SetAlarmObserver

	// Tracking test hooks (fsm_tracking.go): trackingOff skips every
	// tracking write (benchmarks only: it makes replicas differ), and
	// trackWriter, if set, wraps the apply batch for tracking writes.
	trackingOff bool
	trackWriter func(tracking.Writer) tracking.Writer

	// batchRatio estimates the apply batch's size per byte of Raft entry
	// data (moving average, apply goroutine only), to size the batch up
	// front: a batch grown by doubling from Pebble's default allocates
	// and copies its megabytes about twice.
	batchRatio float64

	metrics *WriteMetrics
}

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// NewFSM returns an FSM applying to store; logger nil discards logs. The FSM
// does not own store: closing it is the caller's job.
func NewFSM(store *Store, logger *slog.Logger) *FSM {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &FSM{store: store, logger: logger.With("component", "fsm"), mem: bufpool.New(), metrics: newWriteMetrics()}
}

// Store returns the FSM's store.
func (f *FSM) Store() *Store { return f.store }

// Apply applies one log entry; see ApplyBatch.
func (f *FSM) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies logs in order in ONE Pebble batch that also records the
// index and term of the last log, committed with the store's durability
// (StoreConfig.Sync). It returns one response per log: nil, an error value
// (a business rejection) or an *IngestResult. Logs at or below the stored
// applied index are skipped (nil response), so a replay after a restart
// applies nothing twice. Non-command logs (Raft configuration changes) only
// advance the applied index.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	resps := make([]any, len(logs))
	if len(logs) == 0 {
		return resps
	}
	// After this batch (commit and publish included), reads may see
	// everything up to its last entry (obsstore.go, replayGate).
	defer f.store.noteReplayed(logs[len(logs)-1].Index)
	in := 0
	for _, l := range logs {
		in += len(l.Data)
	}
	ac := f.store.newApplyCtx(f.batchSize(in))
	defer ac.close()
	applied := f.store.AppliedIndex()
	var last *raft.Log
	var restaged *tracking.Recorder
	for i, l := range logs {
		if l.Index <= applied && applied != 0 {
			f.logger.Debug("skip applied entry", "raft_index", l.Index)
			if l.Type == raft.LogCommand {
				re := replayedEntry{l: l}
				f.restageObservations(ac, &re)
				if !f.trackingOff {
					f.restageObjects(&restaged, &re)
				}
				f.replayDirty(&re)
				re.release()
			}
			continue
		}
		if restaged != nil {
			// Before anything new can fold them.
			restaged.Published()
			restaged = nil
		}
		last = l
		if l.Type != raft.LogCommand {
			continue
		}
		resps[i] = f.apply(ac, l)
	}
	if restaged != nil {
		restaged.Published()
	}
	if last == nil {
		return resps
	}
	size := ac.b.Len()
	start := time.Now()
	ac.commit(last.Index, last.Term)
	if ac.track != nil {
		ac.track.Published()
	}
	f.metrics.commit.Observe(time.Since(start).Seconds())
	f.observeBatch(in, size)
	f.batches.Add(1)
	f.alarmsCommitted(ac)
	return resps
}

// apply dispatches one command entry.
func (f *FSM) apply(ac *applyCtx, l *raft.Log) any {
	t, h, payload, err := splitEntry(l.Data)
	if err != nil {
		panic(fmt.Sprintf("cluster: fsm: undecodable entry at index %d: %v", l.Index, err))
	}
	ac.log = l
	defer f.metrics.observeApply(t, time.Now())
	switch t {
	case CmdCreateDataset:
		return f.applyCreateDataset(ac, l.Index, h)
	case CmdDeleteDataset:
		return f.applyDeleteDataset(ac, l.Index, h)
	case CmdIngest:
		return f.applyIngest(ac, l.Index, h, payload)
	case CmdAlarmRaise:
		return f.applyAlarmRaise(ac, l.Index, h)
	case CmdAlarmClear:
		return f.applyAlarmClear(ac, l.Index, h)
	case CmdSetForecastConfig:
		return f.applySetForecastConfig(ac, l.Index, h)
	case CmdForecastResults:
		return f.applyForecastResults(ac, l.Index, h, payload)
	case CmdForecastRefresh:
		return f.applyForecastRefresh(ac, l.Index, h, payload)
	case CmdTrackBlocks:
		return f.applyTrackBlocks(ac, l.Index, h)
	case CmdTrackExpire:
		return f.applyTrackExpire(ac, l.Index, h)
	}
	if t&IgnorableCommand != 0 {
		f.logger.Warn("ignoring unknown ignorable command", "type", uint8(t), "raft_index", l.Index)
		return nil
	}
	panic(fmt.Sprintf("cluster: fsm: unknown command type %d at index %d", uint8(t), l.Index))
}

// divergence panics for an entry that was committed but cannot be applied.
func divergence(t CommandType, index uint64, err error) {
	panic(fmt.Sprintf("cluster: fsm: undecodable %s entry at index %d: %v", t, index, err))
}

// applyCtx is the state of one ApplyBatch: the Pebble batch and overlays of
// everything written in it that later entries of the same batch must see
// (reads of the committed state do not see the open batch).
type applyCtx struct {
	s *Store
	b *pebble.Batch

	datasets    map[string]*dsEntry // created (entry) or deleted (nil) in this batch
	nextID      uint32
	nextIDDirty bool
	stats       map[uint32]*statsWork
	series      map[seriesRef]*dsEntry // series first written in this batch
	txs         map[txRef]*txRecordWire
	parts       map[partRef]*IngestResult
	alarms      *alarmWork         // nil until the batch holds an alarm command
	log         *raft.Log          // the entry being applied
	track       *tracking.Recorder // nil until the batch writes tracking records

	fc *forecastWork // nil until the batch touches forecast state

	ingested uint64 // ingest parts applied in this batch
	*rowScratch
	staged  []*stagedBlock  // blocks staged in this batch, published on commit
	dropped map[uint32]bool // datasets deleted in this batch
}

// rowScratch holds writeRows' buffers. A Store keeps one between apply
// batches (Store.rowScratch): at moderate load a batch is usually one
// ingest part, and fresh buffers for every part (the sort orders, the
// block under construction and its group index, about 1 MB for 10,000
// rows) were a fifth of the node's allocations, and so of its GC work.
//
// A part far larger than usual leaves buffers that are not kept.
type rowScratch struct {
	valBuf   []byte
	order    []rowOrder   // rows in (series, period, row) order
	orderTmp []rowOrder   // sortRows' other buffer
	block    blockBuilder // the staged block being built
}

type statsWork struct {
	e  *dsEntry
	st dsStats
}

type seriesRef struct {
	dsid uint32
	sid  uint64
}

type txRef struct {
	dsid uint32
	key  string
}

type partRef struct {
	dsid uint32
	key  string
	part int
}

// Bounds of the apply batch's initial size (FSM.batchSize).
const (
	minApplyBatch = 64 << 10
	maxApplyBatch = 64 << 20
)

// batchSize returns the initial size of the apply batch for in bytes of
// entry data.
func (f *FSM) batchSize(in int) int {
	r := f.batchRatio
	if r == 0 {
		r = 2
	}
	return min(max(int(r*float64(in))+in/8, minApplyBatch), maxApplyBatch)
}

// observeBatch folds the size of a committed apply batch for in bytes of
// entry data into batchRatio.
func (f *FSM) observeBatch(in, size int) {
	if in < 4<<10 {
		return // small entries say little about large ones
	}
	r := float64(size) / float64(in)
	if f.batchRatio == 0 {
		f.batchRatio = r
	} else {
		f.batchRatio = 0.8*f.batchRatio + 0.2*r
	}
}

// newApplyCtx returns the context of one ApplyBatch call; size is the
// apply batch's initial size in bytes.
func (s *Store) newApplyCtx(size int) *applyCtx {
	s.mu.RLock()
	next := s.nextID
	s.mu.RUnlock()
	b := s.applyBatch.Take(s.db, size, maxKeptBatch)
	rs := s.rowScratch.Swap(nil)
	if rs == nil {
		rs = &rowScratch{}
	}
	return &applyCtx{
		s:          s,
		b:          b,
		rowScratch: rs,
		datasets:   map[string]*dsEntry{},
		nextID:     next,
		stats:      map[uint32]*statsWork{},
		series:     map[seriesRef]*dsEntry{},
		txs:        map[txRef]*txRecordWire{},
		parts:      map[partRef]*IngestResult{},
	}
}

// maxKeptScratch is the largest block buffer a kept rowScratch retains.
const maxKeptScratch = 16 << 20

// close keeps the batch and the row scratch for the next ApplyBatch.
func (ac *applyCtx) close() {
	if ac.b != nil {
		ac.s.applyBatch.Keep(ac.b)
		ac.b = nil
	}
	if rs := ac.rowScratch; rs != nil && cap(rs.block.buf) <= maxKeptScratch {
		ac.s.rowScratch.Store(rs)
	}
	ac.rowScratch = nil
}

// dataset returns the dataset name as of this point of the batch.
func (ac *applyCtx) dataset(name string) *dsEntry {
	if e, ok := ac.datasets[name]; ok {
		return e
	}
	return ac.s.dataset(name)
}

func (ac *applyCtx) statsOf(e *dsEntry) *dsStats {
	w, ok := ac.stats[e.id]
	if !ok {
		w = &statsWork{e: e, st: loadStats(e)}
		ac.stats[e.id] = w
	}
	return &w.st
}

// must panics on a storage error during apply: the node cannot keep its
// state in step with the log.
func must(err error) {
	if err != nil {
		panic(fmt.Sprintf("cluster: fsm store write failed during apply: %v", err))
	}
}

// commit writes the applied index, counters and id allocator into the batch,
// commits it and publishes the new state to the in-memory caches.
func (ac *applyCtx) commit(index, term uint64) {
	s := ac.s
	var v [16]byte
	putU64(v[:8], index)
	putU64(v[8:], term)
	must(ac.b.Set(keyApplied, v[:], nil))
	if ac.nextIDDirty {
		var id [4]byte
		putU32(id[:], ac.nextID)
		must(ac.b.Set(keyNextID, id[:], nil))
	}
	for id, w := range ac.stats {
		must(ac.b.Set(statsKey(id), w.st.encode(), nil))
	}
	if len(ac.dropped) > 0 {
		// Pending blocks of deleted datasets go, and a fold running now
		// must not write chunks under a deleted id after the DeleteRange
		// (obsstore.go): drop them and commit under the stage lock.
		ac.staged = slices.DeleteFunc(ac.staged, func(b *stagedBlock) bool { return ac.dropped[b.dsid] })
		s.stage.mu.Lock()
		s.stage.dropLocked(ac.dropped)
		must(ac.b.Commit(s.wo))
		s.stage.mu.Unlock()
	} else {
		must(ac.b.Commit(s.wo))
	}
	// Publish: counters first (entries not yet visible are harmless), then
	// the catalog, then the index, so a reader that sees index i sees the
	// catalog of i.
	for _, w := range ac.stats {
		w.st.store(w.e)
	}
	if len(ac.datasets) > 0 || ac.nextIDDirty {
		s.mu.Lock()
		for name, e := range ac.datasets {
			if e == nil {
				delete(s.datasets, name)
			} else {
				s.datasets[name] = e
			}
		}
		s.nextID = ac.nextID
		s.mu.Unlock()
	}
	for ref, e := range ac.series {
		e.known.Add(ref.sid)
	}
	ac.publishDirty()
	ac.publishAlarms()
	s.publishStaged(ac.staged)
	if ac.ingested > 0 {
		s.ingestParts.Add(ac.ingested)
	}
	s.term.Store(term)
	s.applied.Store(index)
}

var _ io.Closer = (*Store)(nil)
