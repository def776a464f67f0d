package tracking

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// ErrNotFound is returned when a transaction does not exist (or expired).
var ErrNotFound = errors.New("tracking: not found")

// Writer receives tracking writes. *pebble.Batch satisfies it; the FSM
// passes the batch that also carries the applied data and index, so
// tracking commits atomically with the apply.
type Writer interface {
	Set(key, value []byte, o *pebble.WriteOptions) error
	Delete(key []byte, o *pebble.WriteOptions) error
	DeleteRange(start, end []byte, o *pebble.WriteOptions) error
}

// Reader reads committed tracking state. *pebble.DB, *pebble.Snapshot and
// indexed *pebble.Batch satisfy it.
type Reader interface {
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
	Get(key []byte) ([]byte, io.Closer, error)
}

var (
	_ Writer = (*pebble.Batch)(nil)
	_ Reader = (*pebble.DB)(nil)
	_ Reader = (*pebble.Snapshot)(nil)
)

// Store is the tracking store. It holds no mutable state besides an error
// counter and scratch buffers: everything lives in Pebble under Config.Prefix, so any number of
// goroutines may query concurrently, and a Store can be dropped and
// re-created at any time (for instance after an FSM snapshot restore).
//
// A Store is either embedded (New: the caller owns the Pebble instance and
// passes Readers and Writers) or standalone (Open: the Store owns a Pebble
// instance in Config.Dir, available as DB). Both share all code.
type Store struct {
	cfg      Config
	k        keys
	required [numStages]bool
	db       *pebble.DB // standalone only
	reader   Reader     // default Reader for queries (nil r)
	wo       *pebble.WriteOptions
	ingest   *runIngester // nil: folds write runs into the batch

	writeErrors atomic.Int64
	// ingestErrors counts folds whose runs could not be ingested and
	// went through the batch instead.
	ingestErrors atomic.Int64
	objScratch   sync.Pool // *objScratch, for RecordObjects
	// foldScratch is reused by folds of staged objects (objects.go). Not
	// a sync.Pool: folds are rare enough that a GC between two would
	// empty the pool, and the buffers are megabytes.
	foldScratch atomic.Pointer[foldScratch]
	// vol holds the committed staged calls of the object index when
	// Config.VolatileStaging keeps them out of Pebble (objects.go).
	vol volStage

	closeOnce sync.Once
	closeErr  error
}

// New returns an embedded store over a Pebble instance owned by the caller.
// r is the default Reader for queries given a nil Reader; it may be nil.
func New(cfg Config, r Reader) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Store{cfg: cfg, k: keys{p: cfg.Prefix, q: cfg.RunPrefix}, reader: r, wo: pebble.NoSync}
	if cfg.RunIngest != nil {
		var err error
		if s.ingest, err = newRunIngester(cfg.RunIngest, cfg.Logger); err != nil {
			return nil, err
		}
	}
	for _, st := range cfg.RequiredStages {
		s.required[st.code()-1] = true
	}
	if cfg.Sync {
		s.wo = pebble.Sync
	}
	return s, nil
}

// Open opens (creating if needed) a standalone store in cfg.Dir.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("tracking: open: empty dir")
	}
	s, err := New(cfg, nil)
	if err != nil {
		return nil, err
	}
	cache := pebble.NewCache(s.cfg.CacheSize)
	defer cache.Unref()
	opts := &pebble.Options{
		FS:                 s.cfg.FS,
		Cache:              cache,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{s.cfg.Logger.With("component", "tracking")},
	}
	db, err := pebble.Open(s.cfg.Dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open tracking store: %w", err)
	}
	s.db, s.reader = db, db
	if s.ingest == nil {
		ri := &RunIngest{DB: db, Options: opts, Dir: s.cfg.FS.PathJoin(s.cfg.Dir, "run-ingest")}
		if s.ingest, err = newRunIngester(ri, s.cfg.Logger); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("open tracking store: %w", err)
		}
		s.cfg.RunIngest = ri
	}
	return s, nil
}

// Close closes a standalone store's Pebble instance; it is a no-op for an
// embedded store. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.db != nil {
			s.closeErr = s.db.Close()
		}
	})
	return s.closeErr
}

// DB returns a standalone store's Pebble instance, or nil when embedded.
func (s *Store) DB() *pebble.DB { return s.db }

// Config returns the store's config with defaults filled in.
func (s *Store) Config() Config { return s.cfg }

// Cutoff returns the retention cutoff for now: records older than the
// returned time may be expired. now must come from a replicated record
// (for instance the time in a Raft command), not the local clock, when the
// result feeds Expire inside the FSM.
func (s *Store) Cutoff(now time.Time) time.Time { return now.Add(-s.cfg.Retention) }

// WriteErrors returns how many Recorder calls failed since the store was
// created.
func (s *Store) WriteErrors() int64 { return s.writeErrors.Load() }

// RunIngestErrors returns how many folds of the object index could not
// ingest their runs since the store was created (they wrote them through
// the batch instead: nothing is lost, but those runs are compacted like
// other data).
func (s *Store) RunIngestErrors() int64 { return s.ingestErrors.Load() }

// Update records into a new batch of a standalone store and commits it
// (NoSync unless Config.Sync). If fn fails nothing is committed.
func (s *Store) Update(fn func(rec *Recorder) error) error {
	if s.db == nil {
		return errors.New("tracking: update: not a standalone store")
	}
	b := s.db.NewBatch()
	defer b.Close()
	rec := s.NewRecorder(s.db, b)
	if err := fn(rec); err != nil {
		return err
	}
	if err := b.Commit(s.wo); err != nil {
		return fmt.Errorf("commit tracking batch: %w", err)
	}
	rec.Published()
	return nil
}

// readerOr returns r, or the store's default reader when r is nil.
func (s *Store) readerOr(r Reader) (Reader, error) {
	if r != nil {
		return r, nil
	}
	if s.reader == nil {
		return nil, errors.New("tracking: no reader")
	}
	return s.reader, nil
}

// get reads one key; found is false for a missing key.
func get(r Reader, key []byte, fn func(v []byte) error) (found bool, err error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	err = fn(v)
	if cerr := closer.Close(); err == nil {
		err = cerr
	}
	return true, err
}

// scan iterates [lower, upper) forward (or backward) and calls fn until it
// returns false or an error. The iterator is always closed and its error
// checked.
func scan(r Reader, lower, upper []byte, reverse bool, fn func(it *pebble.Iterator) (bool, error)) (err error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	var ok bool
	if reverse {
		ok = it.Last()
	} else {
		ok = it.First()
	}
	for ; ok; ok = step(it, reverse) {
		more, err := fn(it)
		if err != nil || !more {
			return err
		}
	}
	return it.Error()
}

func step(it *pebble.Iterator, reverse bool) bool {
	if reverse {
		return it.Prev()
	}
	return it.Next()
}

// pebbleLogger routes Pebble's logs to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg)
	panic(msg)
}
