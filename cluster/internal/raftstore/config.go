package raftstore

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/demandflow/demandflow/cluster/internal/yield"
)

// Config configures a Store. A zero field means its default; DefaultConfig
// returns the defaults with an empty Dir.
type Config struct {
	// Dir is the directory of the store's own Pebble instance. It must not be
	// shared with any other Pebble instance. Required.
	Dir string

	// FS is the file system the store lives on. Default: vfs.Default (the
	// operating system). Tests may pass vfs.NewMem().
	FS vfs.FS

	// Logger receives Pebble's messages and the store's lifecycle and
	// degradation messages, scoped with component=raftstore.
	// Default: a logger that discards everything.
	Logger *slog.Logger

	// OnStoreLogs, when set, is called after every StoreLogs of valid
	// entries, with their number and the time it took (encoding, waiting
	// for an earlier write, the synced commit), whether or not the write
	// succeeded. Metrics only; it must not block.
	OnStoreLogs func(entries int, d time.Duration)

	// CacheSize is the size of Pebble's block cache in bytes. Raft reads
	// mostly recent entries, which the memtable or the OS page cache serve, so
	// the cache can stay small. Default: 8 MiB.
	CacheSize int64

	// MemTableSize is the size of one Pebble memtable in bytes, between
	// 256 KiB and 1 GiB. A flush writes one L0 table of about this size.
	// Default: 8 MiB.
	MemTableSize int64

	// CompactMinEntries is the number of log indexes a head truncation
	// (DeleteRange that removes the oldest entries, as raft does after a
	// snapshot) must span before the store compacts the truncated span in
	// the background, so that disk space comes back promptly rather than
	// whenever Pebble's own compactions reach the range tombstone. A
	// negative value disables these compactions. Default: 1024.
	CompactMinEntries int
}

const (
	defaultCacheSize         = 8 << 20
	defaultMemTableSize      = 8 << 20
	defaultCompactMinEntries = 1024

	minMemTableSize = 256 << 10
	maxMemTableSize = 1 << 30
)

// DefaultConfig returns a Config with every default filled in except Dir.
func DefaultConfig() Config {
	return Config{}.withDefaults()
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.FS == nil {
		c.FS = vfs.Default
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.CacheSize == 0 {
		c.CacheSize = defaultCacheSize
	}
	if c.MemTableSize == 0 {
		c.MemTableSize = defaultMemTableSize
	}
	if c.CompactMinEntries == 0 {
		c.CompactMinEntries = defaultCompactMinEntries
	}
	return c
}

// Validate reports whether c, with its defaults filled in, can open a store.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("raftstore: dir is required"))
	}
	if c.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("raftstore: cache size %d is negative", c.CacheSize))
	}
	if c.MemTableSize < minMemTableSize || c.MemTableSize > maxMemTableSize {
		errs = append(errs, fmt.Errorf("raftstore: memtable size %d outside [%d, %d]",
			c.MemTableSize, minMemTableSize, maxMemTableSize))
	}
	return errors.Join(errs...)
}

// pebbleOptions returns the Pebble options of a raft log store.
//
// Why these settings:
//   - The WAL stays on and every commit is pebble.Sync: the raft log is the
//     durability point of the whole cluster (an entry acknowledged to the
//     leader must survive a crash), so nothing may sit only in memory.
//   - The memtable is small (MemTableSize): raft reads recent entries from the
//     memtable anyway, and a small memtable bounds memory and WAL replay time
//     at restart.
//   - No bloom filters. Log keys are written in increasing index order, so
//     flushed tables cover disjoint index ranges and a Get finds its one
//     candidate table from the table bounds alone; a filter would cost space
//     and CPU on every flush for a Get of a missing index, which only happens
//     for gaps and truncated indexes.
//   - No block compression. Ingest entries, nearly all of the log's bytes,
//     are compressed already (cluster's ingest payload codecs), so Pebble's
//     compressor only burnt CPU on every flush and compaction to store the
//     blocks uncompressed anyway.
//   - Every table Pebble writes is split at the bounds of the log key
//     space (a span policy), so no table holds both log entries and stable
//     or meta keys. Raft appends at the top of the log, so log tables are
//     disjoint from each other and Pebble compacts the log down the LSM by
//     moving tables. A table that held the stable keys (above the log) and
//     the last entries of its memtable spanned every later entry instead,
//     and every compaction into the bottom level rewrote what it carried:
//     596 MB of 1.8 GB appended in a 40 s ingest run, none with the split
//     (bench/RESULTS.md, session 2026-12-06 23:00).
//   - The tables flushes and compactions write leave the page cache once
//     they are synced (dropCacheFS): the log is read back only by lagging
//     followers and at restarts, and its cached pages only crowded out the
//     state store's (and, on a VM, cost fresh page faults).
//   - Flushes and compactions yield the CPU to request handling after every
//     table write (package yield): a flush must not hold a processor that
//     the next StoreLogs, which an ack waits for, needs.
//   - The format major version is pinned (not FormatNewest), so upgrading
//     Pebble never silently ratchets the on-disk format.
//   - Pebble's logger and events are bridged to slog at the levels of
//     STYLE §8: background errors are Error, slow disks and write stalls Warn,
//     informational chatter Debug.
func (c Config) pebbleOptions(cache *pebble.Cache) *pebble.Options {
	logger := pebbleLogger{l: c.Logger}
	opts := &pebble.Options{
		FS:                 dropCacheFS(yield.FS(c.FS)),
		Cache:              cache,
		MemTableSize:       uint64(c.MemTableSize),
		FormatMajorVersion: pebble.FormatTableFormatV6,
		Logger:             logger,
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) {
				c.Logger.Error("pebble background error", "error", err)
			},
			DiskSlow: func(info pebble.DiskSlowInfo) {
				c.Logger.Warn("raft store disk slow", "path", info.Path,
					"op", info.OpType.String(), "duration", info.Duration)
			},
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				c.Logger.Warn("raft store write stall", "reason", info.Reason)
			},
			WriteStallEnd: func() {
				c.Logger.Info("raft store write stall ended")
			},
		},
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = pebble.NoFilterPolicy
	}
	// A flush or compaction asks the span policy for the end of the span
	// of each table's first key and ends the table there.
	opts.Experimental.SpanPolicyFunc = pebble.MakeStaticSpanPolicyFunc(pebble.DefaultComparer.Compare,
		pebble.KeyRange{Start: logLower, End: logUpper}, pebble.SpanPolicy{})
	opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionNone })
	return opts
}
