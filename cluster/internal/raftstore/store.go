package raftstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"

	"github.com/demandflow/demandflow/cluster/internal/batchslot"
)

// ErrClosed is returned by every method of a Store after Close.
var ErrClosed = errors.New("raftstore: closed")

// Compile-time checks that Store is what raft needs.
var (
	_ raft.LogStore    = (*Store)(nil)
	_ raft.StableStore = (*Store)(nil)
)

// Store is a raft.LogStore and raft.StableStore on its own Pebble instance.
// Every write is committed with pebble.Sync before the method returns.
// All methods are safe for concurrent use; see the package doc for the
// invariants and the lock order.
type Store struct {
	db         *pebble.DB
	logger     *slog.Logger
	compactMin int // <0: no background compactions
	onStore    func(entries int, d time.Duration)

	// closeMu guards closed and the lifetime of db: every method holds it
	// for reading, Close for writing.
	closeMu sync.RWMutex
	closed  bool

	// writeMu serialises StoreLogs and DeleteRange so that first and last
	// always follow the committed log.
	writeMu sync.Mutex
	// first and last cache the lowest and highest stored log index; both are
	// 0 when the log is empty. Written under writeMu after a commit.
	first atomic.Uint64
	last  atomic.Uint64
	// spare is StoreLogs' batch, kept between calls (see keptBatch).
	spare batchslot.Slot

	// compactMu guards compactEnd, the exclusive log index up to which the
	// compactor should compact next; compactCh wakes the compactor.
	compactMu   sync.Mutex
	compactEnd  uint64
	compactCh   chan struct{}
	compactions atomic.Uint64 // finished background compactions, for tests

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open opens or creates the store in cfg.Dir. The caller must Close it.
func Open(cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Logger = cfg.Logger.With("component", "raftstore")

	cache := pebble.NewCache(cfg.CacheSize)
	// Pebble takes its own reference in Open.
	defer cache.Unref()
	db, err := pebble.Open(cfg.Dir, cfg.pebbleOptions(cache))
	if err != nil {
		return nil, fmt.Errorf("open raft store %s: %w", cfg.Dir, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		db:         db,
		logger:     cfg.Logger,
		compactMin: cfg.CompactMinEntries,
		onStore:    cfg.OnStoreLogs,
		compactCh:  make(chan struct{}, 1),
		cancel:     cancel,
	}
	if err := s.checkFormat(); err != nil {
		cancel()
		return nil, errors.Join(fmt.Errorf("open raft store %s: %w", cfg.Dir, err), db.Close())
	}
	if err := s.loadIndexes(); err != nil {
		cancel()
		return nil, errors.Join(fmt.Errorf("open raft store %s: %w", cfg.Dir, err), db.Close())
	}
	if s.compactMin >= 0 {
		s.wg.Go(func() { s.compactLoop(ctx) })
	}
	s.logger.Info("raft store opened", "dir", cfg.Dir,
		"first_index", s.first.Load(), "last_index", s.last.Load())
	return s, nil
}

// Close stops background compactions and closes Pebble. It is idempotent:
// later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.closeMu.Lock()
		defer s.closeMu.Unlock()
		s.closed = true
		s.spare.Close()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("close raft store: %w", err)
			return
		}
		s.logger.Info("raft store closed")
	})
	return s.closeErr
}

// PebbleMetrics returns Pebble's metrics of the store (its levels,
// flushes, compactions, caches) as Pebble formats them, for diagnostics.
// It returns "closed" after Close.
func (s *Store) PebbleMetrics() string {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return "closed"
	}
	return s.db.Metrics().String()
}

// checkFormat writes formatVersion into a new store and refuses a store
// written in another layout.
func (s *Store) checkFormat() error {
	v, closer, err := s.db.Get(metaVersionKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return s.db.Set(metaVersionKey, []byte{formatVersion}, pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("read format version: %w", err)
	}
	ok := len(v) == 1 && v[0] == formatVersion
	got := fmt.Sprintf("%x", v)
	if err := closer.Close(); err != nil {
		return fmt.Errorf("read format version: %w", err)
	}
	if !ok {
		return fmt.Errorf("raftstore: unsupported format version %s, want %d", got, formatVersion)
	}
	return nil
}

// loadIndexes sets first and last from disk. The caller holds writeMu or
// has exclusive use of s.
func (s *Store) loadIndexes() (err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logLower, UpperBound: logUpper})
	if err != nil {
		return fmt.Errorf("load log bounds: %w", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("load log bounds: %w", cerr)
		}
	}()
	var first, last uint64
	if it.First() {
		if first, err = parseLogKey(it.Key()); err != nil {
			return err
		}
		if !it.Last() {
			return fmt.Errorf("load log bounds: %w", errors.Join(errCorrupt, it.Error()))
		}
		if last, err = parseLogKey(it.Key()); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("load log bounds: %w", err)
	}
	s.first.Store(first)
	s.last.Store(last)
	return nil
}

// scheduleCompact asks the compactor to compact the log below index end.
// It never blocks.
func (s *Store) scheduleCompact(end uint64) {
	s.compactMu.Lock()
	s.compactEnd = max(s.compactEnd, end)
	s.compactMu.Unlock()
	select {
	case s.compactCh <- struct{}{}:
	default: // a wake-up is already pending; it will see compactEnd
	}
}

// compactLoop runs the background compactions of truncated log spans
// until ctx is cancelled.
func (s *Store) compactLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.compactCh:
		}
		s.compactMu.Lock()
		end := s.compactEnd
		s.compactMu.Unlock()
		if err := s.compact(ctx, end); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.logger.Warn("compact truncated raft log", "raft_index", end, "error", err)
			continue
		}
		s.compactions.Add(1)
	}
}

// compact compacts the log key span below index end, so that the tables a
// head truncation emptied are dropped and the space returns to the disk.
func (s *Store) compact(ctx context.Context, end uint64) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.Compact(ctx, logLower, logKey(end), false /* parallelize */)
}
