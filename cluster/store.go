package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/demandflow/demandflow/cluster/internal/batchslot"
	"github.com/demandflow/demandflow/cluster/internal/yield"
	"github.com/demandflow/demandflow/stream"
	"github.com/demandflow/demandflow/tracking"
)

// StoreConfig configures the FSM's Pebble store.
type StoreConfig struct {
	// Dir is the store's directory; required.
	Dir string
	// FS is the filesystem; nil means vfs.Default. Tests use vfs.NewMem().
	FS vfs.FS
	// Sync makes every ApplyBatch commit with pebble.Sync, so a response
	// means the entry is durable in the FSM store. It must be true while
	// entries are applied locally without Raft (Local): then the FSM store is
	// the only copy. Default false; DefaultStoreConfig sets it to true.
	//
	// Without Sync the store keeps no write-ahead log at all: Raft's log is
	// the store's WAL. The store is then durable up to its last memtable
	// flush, a prefix of what was applied (with its applied index, written
	// in the same batches), and a restart re-applies the entries after that
	// index from the Raft log. Raft deletes log entries only after a
	// snapshot, and a snapshot's Persist flushes the store before it
	// completes (snapshot.go), so those entries are always still there.
	// Close flushes too, so a clean restart replays nothing. Why: the WAL
	// wrote every staged block, folded chunk and tracking record a second
	// time (84 bytes a row), and its writes and syncs shared the disk with
	// the Raft log's fsyncs: without it BenchmarkApplyIngestCPU
	// (tracking=objects, 3M rows) costs 1.19 instead of 1.34-1.36 cpu-s per
	// million rows.
	Sync bool
	// Logger receives store and Pebble logs; nil discards them.
	Logger *slog.Logger
	// CacheSize is Pebble's block cache size in bytes; default 512 MiB
	// (filled as blocks are read; see node.Config.CacheBytes).
	CacheSize int64
	// MemTableSize is the size of one Pebble memtable in bytes; default 32
	// MiB. Ingest batches of 10k rows make ~1 MB of writes, so a memtable
	// takes a few dozen of them before a flush.
	MemTableSize uint64
	// L0CompactionThreshold and L0StopWritesThreshold are Pebble's L0 read
	// amplification thresholds; defaults 12 and 24. Every flush of a
	// period-major feed overlaps every series chunk (series ids are
	// hashes), so each L0 compaction rewrites the whole base level: 12
	// instead of Pebble's usual 4 lets one compaction take three times the
	// flushes, for ~20% less apply CPU per row and no slower series reads
	// right after ingest (BenchmarkApplyIngestCPU -l0 4|12: 1.51-1.64 vs
	// 1.19-1.21 cpu-s/Mrow, 220-400 us per series read either way).
	L0CompactionThreshold int
	L0StopWritesThreshold int
	// FoldRows is the number of staged observation rows at which the
	// folder merges them into the series chunks (obsstore.go); default
	// DefaultFoldRows. FoldInterval is how often it folds whatever is
	// staged even below FoldRows; default DefaultFoldInterval.
	// MaxStagedRows stalls apply while more rows than this wait for a fold;
	// default DefaultMaxStagedRows.
	FoldRows      int
	FoldInterval  time.Duration
	MaxStagedRows int
	// TrackingRetention is how long tracking records are kept; the leader
	// proposes their expiry (fsm_tracking.go). Default 7 days.
	TrackingRetention time.Duration
}

// Defaults of StoreConfig.
const (
	DefaultCacheSize             = 512 << 20
	DefaultMemTableSize          = 32 << 20
	DefaultL0CompactionThreshold = 12
	DefaultL0StopWritesThreshold = 24
)

// DefaultStoreConfig returns the configuration used by the single-node
// committer: Sync on, defaults elsewhere; Dir is left empty.
func DefaultStoreConfig() StoreConfig {
	return StoreConfig{Sync: true}.withDefaults()
}

// Validate reports the first invalid field.
func (c StoreConfig) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("store: dir is required")
	case c.CacheSize < 0:
		return fmt.Errorf("store: cache size %d is negative", c.CacheSize)
	case c.L0CompactionThreshold < 0 || c.L0StopWritesThreshold < 0:
		return errors.New("store: L0 thresholds must not be negative")
	case c.FoldRows < 0 || c.FoldInterval < 0 || c.MaxStagedRows < 0:
		return errors.New("store: fold settings must not be negative")
	case c.L0StopWritesThreshold != 0 && c.L0StopWritesThreshold < c.L0CompactionThreshold:
		return fmt.Errorf("store: L0 stop-writes threshold %d is below the compaction threshold %d",
			c.L0StopWritesThreshold, c.L0CompactionThreshold)
	}
	return nil
}

func (c StoreConfig) withDefaults() StoreConfig {
	if c.FS == nil {
		c.FS = vfs.Default
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.MemTableSize == 0 {
		c.MemTableSize = DefaultMemTableSize
	}
	if c.L0CompactionThreshold == 0 {
		c.L0CompactionThreshold = DefaultL0CompactionThreshold
	}
	if c.L0StopWritesThreshold == 0 {
		c.L0StopWritesThreshold = DefaultL0StopWritesThreshold
	}
	if c.FoldRows == 0 {
		c.FoldRows = DefaultFoldRows
	}
	if c.FoldInterval == 0 {
		c.FoldInterval = DefaultFoldInterval
	}
	if c.MaxStagedRows == 0 {
		c.MaxStagedRows = max(DefaultMaxStagedRows, 2*c.FoldRows)
	}
	return c
}

// dsEntry is the in-memory view of one dataset. id, schema and created are
// immutable; the counters are updated after each committed apply batch.
type dsEntry struct {
	id       uint32
	schema   *stream.Schema
	created  time.Time
	series   atomic.Int64
	accepted atomic.Int64
	rejected atomic.Int64
	txs      atomic.Int64
	// known holds every series id of the dataset, so apply never looks a
	// series up in Pebble (one point read per row was the apply
	// bottleneck). Only the FSM goroutine (apply, load, restore) touches
	// it; it costs 16-32 bytes per series (seriesset.go).
	known *seriesSet
	// dirty holds the committed dirty marks (fsm_dirty.go); shared by the
	// entries that replace this one when its schema changes.
	dirty *dirtyState
}

// DatasetInfo describes a dataset for listings.
type DatasetInfo struct {
	// Schema is shared; callers must not modify it.
	Schema       *stream.Schema
	ID           uint32
	Created      time.Time
	Series       int
	RowsAccepted int64
	RowsRejected int64
	Transactions int64
}

// SeriesInfo is one series of a dataset.
type SeriesInfo struct {
	ID         uint64            `json:"id"`
	Dimensions map[string]string `json:"dimensions"`
}

// Observation is one stored (period, value) of a series.
type Observation struct {
	// Period is the date32 (days since 1970-01-01) of the period's first day.
	Period int32 `json:"period"`
	Value  float64
	// Covariates are in schema order; NaN means null.
	Covariates []float64
	ObjectID   string
}

// Store is the FSM's state: one Pebble instance plus in-memory caches of
// the dataset catalog and counters. The FSM is its only writer; every read
// method is safe for concurrent use with apply and sees a committed state
// (possibly one batch behind).
type Store struct {
	replay replayGate
	cfg    StoreConfig
	db     *pebble.DB
	logger *slog.Logger
	wo     *pebble.WriteOptions

	applied atomic.Uint64
	term    atomic.Uint64
	// applyBatch and foldBatch are the batches kept between applies and
	// between folds.
	applyBatch, foldBatch batchslot.Slot
	// ingestParts counts the ingest parts applied since the store was
	// opened (the forecaster's "ingest is busy" signal).
	ingestParts atomic.Uint64

	mu       sync.RWMutex // guards datasets and nextID; held only for map access
	datasets map[string]*dsEntry
	nextID   uint32

	alarms atomic.Pointer[alarmState] // committed alarm state; see fsm_alarm.go

	track *tracking.Store // tracking records under prefixTracking; see fsm_tracking.go

	stage *stage // pending staged observation blocks (obsstore.go)
	// rowScratch is writeRows' buffers between apply batches (applyCtx).
	rowScratch atomic.Pointer[rowScratch]
	legacyObs  atomic.Bool // the legacy observation table holds keys

	closeMu sync.Mutex
	closed  bool
}

// OpenStore opens (creating if needed) the store in cfg.Dir and loads the
// in-memory caches. Pebble is tuned for a write-heavy, append-mostly
// workload: a CacheSize block cache shared by all levels, a WAL only
// without Raft (StoreConfig.Sync), MemTableSize memtables (four may be
// queued before writes stall), L0 compaction from L0CompactionThreshold
// files and a write stop at L0StopWritesThreshold, and Pebble's
// "Balanced" compression profile except in L0: no compression in L0, whose
// tables the next compaction reads straight back, the fastest codec
// (Snappy/MinLZ) for L1-L4, where data is short-lived, and zstd level 1
// for L5 value blocks and all of L6, where most of the data lives; 10-bit
// Bloom filters on every level for the point lookups of keys that do not
// exist.
// The "demandflow.sum.v1" merge operator implements the "sum" duplicate
// policy of legacy observation keys and merges series chunks (obsstore.go).
//
// If a snapshot restore was interrupted, the partial state is wiped and the
// applied index reads 0, so Raft restores the snapshot again.
func OpenStore(cfg StoreConfig) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cache := pebble.NewCache(cfg.CacheSize)
	defer cache.Unref()
	opts := &pebble.Options{
		// Flushes and compactions yield the CPU to request handling
		// (package yield).
		FS:                          yield.FS(cfg.FS),
		Cache:                       cache,
		MemTableSize:                cfg.MemTableSize,
		MemTableStopWritesThreshold: 4,
		// No WAL under Raft (StoreConfig.Sync). An earlier version
		// wrote it without fsync, and its dirty pages, written back in
		// bursts, delayed the Raft log's fsyncs on the same disk (it
		// synced every 512 KiB to keep the bursts small); with Sync
		// every commit syncs the WAL.
		DisableWAL:            !cfg.Sync,
		L0CompactionThreshold: cfg.L0CompactionThreshold,
		L0StopWritesThreshold: cfg.L0StopWritesThreshold,
		Merger:                sumMerger,
		FormatMajorVersion:    pebble.FormatNewest,
		Logger:                pebbleLogger{cfg.Logger},
	}
	// L0 uncompressed: under ingest, flushes write every chunk operand to
	// L0 and the next compaction reads it straight back, so compressing it
	// cost a MinLZ encode and decode per byte for tables that live for
	// seconds (node CPU per row -5% on h3 Arrow ingest, four alternating
	// pairs). Lower levels keep Balanced.
	opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings {
		cs := pebble.DBCompressionBalanced
		cs.Levels[0] = sstable.NoCompression
		return cs
	})
	// Bloom filters: every ingest part looks up its idempotency record and
	// transaction, which do not exist for a new transaction, and a miss
	// without filters searched (and decompressed a block of) every table
	// whose range held the random key: 0.4 s of 11 cpu-s for 4M rows.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(cfg.Dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open fsm store: %w", err)
	}
	s := &Store{
		cfg:    cfg,
		db:     db,
		logger: cfg.Logger,
		wo:     pebble.NoSync,
		stage:  newStage(),
	}
	if cfg.Sync {
		s.wo = pebble.Sync
	}
	if s.track, err = newTrackingStore(cfg, db, opts); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open fsm store: %w", err)
	}
	if _, closer, err := db.Get(keyRestoring); err == nil {
		_ = closer.Close()
		s.logger.Warn("fsm store: interrupted snapshot restore found, wiping state")
		b := db.NewBatch()
		err := b.DeleteRange(keyspaceStart, keyspaceEnd, nil)
		if err == nil {
			err = b.Commit(s.wo)
		}
		if err == nil {
			err = s.flushUnlogged()
		}
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("open fsm store: wipe partial restore: %w", err)
		}
	} else if !errors.Is(err, pebble.ErrNotFound) {
		_ = db.Close()
		return nil, fmt.Errorf("open fsm store: %w", err)
	}
	if err := s.load(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open fsm store: %w", err)
	}
	s.startFolder()
	return s, nil
}

// load (re)builds the in-memory caches from Pebble.
func (s *Store) load() error {
	var applied, term uint64
	if v, closer, err := s.db.Get(keyApplied); err == nil {
		if len(v) == 16 {
			applied, term = binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
		}
		_ = closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	var nextID uint32 = 1
	if v, closer, err := s.db.Get(keyNextID); err == nil {
		if len(v) == 4 {
			nextID = binary.BigEndian.Uint32(v)
		}
		_ = closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	datasets := map[string]*dsEntry{}
	err := s.scan(context.Background(), []byte{prefixDataset}, []byte{prefixDataset + 1}, func(k, v []byte) (bool, error) {
		e, err := decodeDatasetValue(v)
		if err != nil {
			return false, fmt.Errorf("dataset %q: %w", k[1:], err)
		}
		datasets[e.schema.Name] = e
		return true, nil
	})
	if err != nil {
		return err
	}
	byID := make(map[uint32]*dsEntry, len(datasets))
	for _, e := range datasets {
		e.known = &seriesSet{}
		byID[e.id] = e
	}
	err = s.scan(context.Background(), []byte{prefixSeries}, []byte{prefixSeries + 1}, func(k, _ []byte) (bool, error) {
		if len(k) == 13 {
			if e := byID[binary.BigEndian.Uint32(k[1:5])]; e != nil {
				e.known.Add(binary.BigEndian.Uint64(k[5:]))
			}
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	var replayUntil uint64
	for _, e := range datasets {
		newest, err := s.loadDirty(e)
		if err != nil {
			return fmt.Errorf("dataset %q: dirty marks: %w", e.schema.Name, err)
		}
		replayUntil = max(replayUntil, newest)
		if v, closer, err := s.db.Get(statsKey(e.id)); err == nil {
			st := decodeStats(v)
			_ = closer.Close()
			st.store(e)
		} else if !errors.Is(err, pebble.ErrNotFound) {
			return err
		}
	}
	if err := s.loadAlarms(); err != nil {
		return err
	}
	if err := s.loadStaged(); err != nil {
		return err
	}
	if err := s.armReplayAfterLoad(replayUntil); err != nil {
		return err
	}
	s.applied.Store(applied)
	s.term.Store(term)
	s.mu.Lock()
	s.datasets, s.nextID = datasets, nextID
	s.mu.Unlock()
	return nil
}

// Close closes the store; it is idempotent. Reads after Close fail.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.closeFolder()
	// Blocks and dirty marks held in memory go into Pebble, so the next
	// open loads them without a Raft replay (obsstore.go, "Volatile
	// blocks"; fsm_dirty.go). Not while the replay after a restart is
	// short of them: the pending keys of what it has not replayed yet
	// must stay for the next one.
	var perr error
	if !s.replaying() {
		perr = errors.Join(s.persistVolatile(), s.persistDirty())
	}
	s.applyBatch.Close()
	s.foldBatch.Close()
	// Without a WAL the memtables are all that holds the latest applies;
	// a failed flush loses nothing Raft cannot replay, so Close goes on.
	ferr := errors.Join(perr, s.flushUnlogged())
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close fsm store: %w", errors.Join(ferr, err))
	}
	if ferr != nil {
		return fmt.Errorf("close fsm store: %w", ferr)
	}
	return nil
}

// flushUnlogged makes everything committed so far durable when the store
// has no WAL (StoreConfig.Sync false), by flushing the memtables; with a
// WAL it does nothing (writes that needed durability were synced).
func (s *Store) flushUnlogged() error {
	if s.cfg.Sync {
		return nil
	}
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("flush fsm store: %w", err)
	}
	return nil
}

// PebbleMetrics returns Pebble's metrics of the store (its levels,
// flushes, compactions, caches) as Pebble formats them, for diagnostics.
// It returns "closed" after Close.
func (s *Store) PebbleMetrics() string {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return "closed"
	}
	return s.db.Metrics().String()
}

// maxKeptBatch is the largest buffer a kept apply or fold batch retains:
// an apply or a fold writes megabytes.
const maxKeptBatch = 64 << 20

// IngestParts returns the number of ingest parts applied (and committed)
// since the store was opened.
func (s *Store) IngestParts() uint64 { return s.ingestParts.Load() }

// AppliedIndex returns the index of the last log entry applied and committed.
func (s *Store) AppliedIndex() uint64 { return s.applied.Load() }

func (s *Store) dataset(name string) *dsEntry {
	s.mu.RLock()
	e := s.datasets[name]
	s.mu.RUnlock()
	return e
}

// Dataset returns the schema of the dataset name. The schema is shared and
// must not be modified. It is cheap (a map lookup under a read lock).
func (s *Store) Dataset(name string) (*stream.Schema, bool) {
	e := s.dataset(name)
	if e == nil {
		return nil, false
	}
	return e.schema, true
}

// Datasets lists every dataset, sorted by name.
func (s *Store) Datasets() []DatasetInfo {
	s.mu.RLock()
	out := make([]DatasetInfo, 0, len(s.datasets))
	for _, e := range s.datasets {
		out = append(out, DatasetInfo{
			Schema: e.schema, ID: e.id, Created: e.created,
			Series: int(e.series.Load()), RowsAccepted: e.accepted.Load(),
			RowsRejected: e.rejected.Load(), Transactions: e.txs.Load(),
		})
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b DatasetInfo) int { return cmpString(a.Schema.Name, b.Schema.Name) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// SeriesCount returns the number of series of dataset, 0 when unknown.
func (s *Store) SeriesCount(dataset string) int {
	if e := s.dataset(dataset); e != nil {
		return int(e.series.Load())
	}
	return 0
}

// Default and maximum page sizes of Series.
const (
	DefaultSeriesLimit = 100
	MaxSeriesLimit     = 10000
)

// Series lists the series of dataset whose dimensions equal every value in
// filter (dimension name -> value), in series-id order, starting after the
// series id after (0 = from the start). limit <= 0 means
// DefaultSeriesLimit; it is capped at MaxSeriesLimit. next is the id to pass
// as after for the next page, 0 when there is none. Unknown datasets return
// ErrUnknownDataset, unknown filter dimensions ErrUnknownDimension.
func (s *Store) Series(ctx context.Context, dataset string, filter map[string]string, after uint64, limit int) ([]SeriesInfo, uint64, error) {
	e := s.dataset(dataset)
	if e == nil {
		return nil, 0, fmt.Errorf("%w: %q", ErrUnknownDataset, dataset)
	}
	dims := e.schema.Dimensions
	type cond struct {
		idx int
		val string
	}
	conds := make([]cond, 0, len(filter))
	for d, v := range filter {
		i := slices.Index(dims, d)
		if i < 0 {
			return nil, 0, fmt.Errorf("%w: %q is not a dimension of dataset %q (dimensions: %v)", ErrUnknownDimension, d, dataset, dims)
		}
		conds = append(conds, cond{i, v})
	}
	if limit <= 0 {
		limit = DefaultSeriesLimit
	}
	limit = min(limit, MaxSeriesLimit)
	if after == math.MaxUint64 {
		return nil, 0, nil
	}
	lo := seriesKey(e.id, after)
	if after != 0 {
		lo = seriesKey(e.id, after+1)
	}
	_, hi := dsRange(prefixSeries, e.id)
	var out []SeriesInfo
	var next uint64
	err := s.scan(ctx, lo, hi, func(k, v []byte) (bool, error) {
		vals, ok := decodeDims(v, len(dims))
		if !ok {
			return false, fmt.Errorf("corrupt series entry %x", k)
		}
		for _, c := range conds {
			if vals[c.idx] != c.val {
				return true, nil
			}
		}
		id := binary.BigEndian.Uint64(k[5:])
		if len(out) == limit {
			next = out[len(out)-1].ID
			return false, nil
		}
		m := make(map[string]string, len(dims))
		for i, d := range dims {
			m[d] = vals[i]
		}
		out = append(out, SeriesInfo{ID: id, Dimensions: m})
		return true, nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list series of %q: %w", dataset, err)
	}
	return out, next, nil
}

// Observations returns the observations of one series with from <= period
// <= to (date32; math.MinInt32 / math.MaxInt32 leave a side open), in period
// order. Unknown datasets return ErrUnknownDataset, unknown series
// ErrUnknownSeries.
func (s *Store) Observations(ctx context.Context, dataset string, seriesID uint64, from, to int32) ([]Observation, error) {
	e := s.dataset(dataset)
	if e == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownDataset, dataset)
	}
	// One snapshot-free check is enough: series are only removed with the
	// whole dataset.
	_, closer, err := s.db.Get(seriesKey(e.id, seriesID))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("%w: %d in dataset %q", ErrUnknownSeries, seriesID, dataset)
	} else if err != nil {
		return nil, fmt.Errorf("read series %d: %w", seriesID, err)
	}
	_ = closer.Close()
	if from > to {
		return nil, nil
	}
	if err := s.waitReplayed(ctx); err != nil {
		return nil, err
	}
	s.stage.mu.RLock()
	body, _, err := s.seriesBody(e, seriesID, nil, nil)
	s.stage.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("read observations of series %d: %w", seriesID, err)
	}
	lo, hi := biasPeriod(from), biasPeriod(to)
	out := make([]Observation, 0, 64)
	for len(body) > 0 {
		ce, rest, ok := nextChunkEntry(body)
		if !ok {
			return nil, fmt.Errorf("read observations of series %d: %w", seriesID, errCorruptChunk)
		}
		body = rest
		if ce.period < lo || ce.period > hi {
			continue
		}
		o, ok := decodeObsValue(ce.val)
		if !ok {
			return nil, fmt.Errorf("read observations of series %d: corrupt observation of period %d", seriesID, unbiasPeriod(ce.period))
		}
		o.Period = unbiasPeriod(ce.period)
		out = append(out, o)
	}
	return out, nil
}

// Transaction returns the record of the transaction with idempotency key
// key (the client's Idempotency-Key, or the TxID when none was given) in
// dataset. ok is false when no part of it was applied. When rec.Complete()
// the HTTP layer answers a retry with rec; otherwise it re-sends the parts
// (already applied parts are no-ops).
func (s *Store) Transaction(dataset, key string) (rec *TxRecord, ok bool, err error) {
	e := s.dataset(dataset)
	if e == nil {
		return nil, false, fmt.Errorf("%w: %q", ErrUnknownDataset, dataset)
	}
	v, closer, err := s.db.Get(txKey(e.id, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, fmt.Errorf("read transaction: %w", err)
	}
	defer closer.Close()
	var w txRecordWire
	if err := decodeHeader(v, &w); err != nil {
		return nil, false, fmt.Errorf("decode transaction record: %w", err)
	}
	return w.record(), true, nil
}

// scan calls fn for every key in [lo, hi) until fn returns false or an
// error; k and v are valid only during the call. ctx is checked every 1024
// keys.
func (s *Store) scan(ctx context.Context, lo, hi []byte, fn func(k, v []byte) (bool, error)) (err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		more, err := fn(it.Key(), v)
		if err != nil || !more {
			return err
		}
	}
	return it.Error()
}

func encodeDatasetValue(id uint32, created time.Time, schemaJSON []byte) []byte {
	v := make([]byte, 0, 12+len(schemaJSON))
	v = binary.BigEndian.AppendUint32(v, id)
	v = binary.BigEndian.AppendUint64(v, uint64(created.UnixNano()))
	return append(v, schemaJSON...)
}

func decodeDatasetValue(v []byte) (*dsEntry, error) {
	if len(v) < 12 {
		return nil, errors.New("short dataset entry")
	}
	var sc stream.Schema
	if err := json.Unmarshal(v[12:], &sc); err != nil {
		return nil, fmt.Errorf("decode schema: %w", err)
	}
	sc.Normalize()
	return &dsEntry{
		id:      binary.BigEndian.Uint32(v),
		created: time.Unix(0, int64(binary.BigEndian.Uint64(v[4:]))).UTC(),
		schema:  &sc,
		dirty:   newDirtyState(),
	}, nil
}

// dsStats are a dataset's counters as persisted under statsKey.
type dsStats struct {
	series, accepted, rejected, txs int64
}

func (st dsStats) encode() []byte {
	v := make([]byte, 0, 32)
	for _, x := range []int64{st.series, st.accepted, st.rejected, st.txs} {
		v = binary.BigEndian.AppendUint64(v, uint64(x))
	}
	return v
}

func decodeStats(v []byte) dsStats {
	var x [4]int64
	for i := range x {
		if len(v) >= (i+1)*8 {
			x[i] = int64(binary.BigEndian.Uint64(v[i*8:]))
		}
	}
	return dsStats{x[0], x[1], x[2], x[3]}
}

func (st dsStats) store(e *dsEntry) {
	e.series.Store(st.series)
	e.accepted.Store(st.accepted)
	e.rejected.Store(st.rejected)
	e.txs.Store(st.txs)
}

func loadStats(e *dsEntry) dsStats {
	return dsStats{e.series.Load(), e.accepted.Load(), e.rejected.Load(), e.txs.Load()}
}

// has reports whether key exists in the committed state.
func (s *Store) has(key []byte) bool {
	_, closer, err := s.db.Get(key)
	if err == nil {
		_ = closer.Close()
		return true
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		panic(fmt.Sprintf("cluster: fsm store read failed during apply: %v", err))
	}
	return false
}

// get returns a copy of key's committed value.
func (s *Store) get(key []byte) ([]byte, bool) {
	v, closer, err := s.db.Get(key)
	if err == nil {
		out := bytes.Clone(v)
		_ = closer.Close()
		return out, true
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		panic(fmt.Sprintf("cluster: fsm store read failed during apply: %v", err))
	}
	return nil, false
}

// pebbleLogger routes Pebble's logs to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble")
	panic(msg)
}

// mergerName names the "sum" merge operator; Pebble records it on disk.
const mergerName = "demandflow.sum.v1"

// sumMerger adds the measures of all operands of an observation key and keeps
// every other field of the newest operand (see appendObsValue). The same
// operator (Pebble records one name per store, so it keeps its name) merges
// the operands of chunk keys with chunkValueMerger. Float
// addition is not associative, so when Pebble groups operands differently
// (compactions) sums of non-integer measures may differ in the last bits
// between nodes; integer quantities below 2^53 are exact.
var sumMerger = &pebble.Merger{
	Name: mergerName,
	Merge: func(key, value []byte) (pebble.ValueMerger, error) {
		if len(key) > 0 && key[0] == prefixChunk {
			return newChunkValueMerger(value)
		}
		m, ok := obsMeasure(value)
		if !ok {
			return nil, fmt.Errorf("cluster: bad merge operand of %d bytes", len(value))
		}
		return &sumValueMerger{newest: bytes.Clone(value), sum: m}, nil
	},
}

type sumValueMerger struct {
	newest []byte
	sum    float64
}

func (m *sumValueMerger) MergeNewer(value []byte) error {
	x, ok := obsMeasure(value)
	if !ok {
		return fmt.Errorf("cluster: bad merge operand of %d bytes", len(value))
	}
	m.sum += x
	m.newest = append(m.newest[:0], value...)
	return nil
}

func (m *sumValueMerger) MergeOlder(value []byte) error {
	x, ok := obsMeasure(value)
	if !ok {
		return fmt.Errorf("cluster: bad merge operand of %d bytes", len(value))
	}
	m.sum += x
	return nil
}

func (m *sumValueMerger) Finish(bool) ([]byte, io.Closer, error) {
	binary.BigEndian.PutUint64(m.newest[1:9], math.Float64bits(m.sum))
	return m.newest, nil, nil
}
