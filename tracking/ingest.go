package tracking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// RunIngest says where a Store ingests the object index's runs (keys.go,
// "Where runs go").
type RunIngest struct {
	// DB is the Pebble instance the Recorders' batches commit to.
	DB *pebble.DB
	// Options are the options DB was opened with: the sstables are
	// written in DB's table format with its comparer, merger and key
	// schema, and on Options.FS.
	Options *pebble.Options
	// Dir is a directory on Options.FS, on the same file system as DB
	// (Pebble hard-links ingested files), for the sstables between their
	// writing and their ingestion. It is created if missing, and files
	// left in it by a crash are removed when the Store is created.
	Dir string
}

// runIngester writes the runs of one fold into an sstable and ingests it.
type runIngester struct {
	db     *pebble.DB
	fs     vfs.FS
	dir    string
	logger *slog.Logger
	seq    atomic.Uint64
	// wo are the sstable writer options: the bottom level's, but with the
	// fastest compression (a run is compressed once and never rewritten;
	// its ids are already front-coded) and without the lowest-level
	// obsolete bits (the file's keys are all live).
	wo sstable.WriterOptions
}

func newRunIngester(ri *RunIngest, logger *slog.Logger) (*runIngester, error) {
	// pebble.Open fills in the defaults on a copy; do the same.
	opts := ri.Options.Clone()
	opts.EnsureDefaults()
	fs := opts.FS
	if err := fs.MkdirAll(ri.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("tracking: run ingest dir: %w", err)
	}
	// Files of an ingest interrupted by a crash: Pebble links what it
	// ingests, so these are copies or were never ingested.
	names, err := fs.List(ri.Dir)
	if err != nil {
		return nil, fmt.Errorf("tracking: run ingest dir: %w", err)
	}
	for _, n := range names {
		if err := fs.Remove(fs.PathJoin(ri.Dir, n)); err != nil {
			return nil, fmt.Errorf("tracking: run ingest dir: %w", err)
		}
	}
	bottom := len(opts.Levels) - 1
	wo := opts.MakeWriterOptions(bottom, ri.DB.TableFormat())
	wo.Compression = sstable.FastestCompression
	wo.WritingToLowestLevel = false
	return &runIngester{db: ri.DB, fs: fs, dir: ri.Dir, logger: logger, wo: wo}, nil
}

// splitRunBytes is the size of a fold's runs above which ingest writes
// them as two sstables on two goroutines: a fold runs on the apply path,
// and writing (compressing) its runs is most of its time.
const splitRunBytes = 1 << 20

// ingest writes the n key/value pairs kv(0..n-1) (in increasing key
// order; size bytes of values in all) into new sstables and ingests them
// together, atomically. Above splitRunBytes the pairs are split in two
// halves in key order, written concurrently into two sstables with
// disjoint key ranges, both of which Pebble places in the bottom level.
func (ri *runIngester) ingest(n, size int, kv func(i int) (k, v []byte)) error {
	parts := 1
	if size >= splitRunBytes && n >= 2 {
		parts = 2
	}
	paths := make([]string, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := p*n/parts, (p+1)*n/parts
		paths[p] = ri.fs.PathJoin(ri.dir, fmt.Sprintf("runs-%06d.sst", ri.seq.Add(1)))
		// Pebble links the file into its directory, or moves it: what
		// is left here is removed, and a failure to do so is only
		// logged (the next Store removes it).
		defer func(path string) {
			if rerr := ri.fs.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				ri.logger.Warn("tracking: remove run sstable", "path", path, "error", rerr)
			}
		}(paths[p])
		write := func() { errs[p] = ri.writeTable(paths[p], lo, hi, kv) }
		if p == parts-1 {
			write() // the last on this goroutine
		} else {
			wg.Go(write)
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := ri.db.Ingest(context.Background(), paths); err != nil {
		return fmt.Errorf("ingest run sstable: %w", err)
	}
	return nil
}

// writeTable writes pairs kv(lo..hi-1) into a new sstable at path.
func (ri *runIngester) writeTable(path string, lo, hi int, kv func(i int) (k, v []byte)) error {
	f, err := ri.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("create run sstable: %w", err)
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), ri.wo)
	var werr error
	for i := lo; i < hi && werr == nil; i++ {
		werr = w.Set(kv(i))
	}
	if cerr := w.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("write run sstable: %w", werr)
	}
	return nil
}
