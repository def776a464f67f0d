package tracking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
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

// ingest writes the key/value pairs that write passes to add (in
// increasing key order) into a new sstable and ingests it.
func (ri *runIngester) ingest(write func(add func(k, v []byte) error) error) (err error) {
	path := ri.fs.PathJoin(ri.dir, fmt.Sprintf("runs-%06d.sst", ri.seq.Add(1)))
	f, err := ri.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("create run sstable: %w", err)
	}
	// Pebble links the file into its directory, or moves it: what is
	// left here is removed, and a failure to do so is only logged (the
	// next Store removes it).
	defer func() {
		if rerr := ri.fs.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			ri.logger.Warn("tracking: remove run sstable", "path", path, "error", rerr)
		}
	}()
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), ri.wo)
	werr := write(w.Set)
	if cerr := w.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("write run sstable: %w", werr)
	}
	if err := ri.db.Ingest(context.Background(), []string{path}); err != nil {
		return fmt.Errorf("ingest run sstable: %w", err)
	}
	return nil
}
