package tracking

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Config configures a Store. A zero field means its default.
type Config struct {
	// Prefix is the first byte of every tracking key; tracking owns the
	// key range [Prefix, Prefix+1) of the Pebble instance. Default 't'.
	// 0x00 cannot be chosen (it means "default"), nor 0xff (no upper bound).
	Prefix byte

	// RunPrefix is the first byte of the object index's run keys
	// (keys.go, "Where runs go"); tracking also owns [RunPrefix,
	// RunPrefix+1). It should be the last prefix in use in the Pebble
	// instance, so that ingested runs overlap nothing. Default 0xfe; it
	// must differ from Prefix and cannot be 0xff.
	RunPrefix byte

	// RunIngest, if set, makes folds of the object index ingest their runs
	// into Pebble as sstables instead of writing them into the Recorder's
	// batch: same keys and values, written once instead of rewritten by
	// every compaction. Its DB must be the instance the Recorders'
	// batches commit to. A standalone store (Open) sets it itself.
	RunIngest *RunIngest

	// Retention is how long records are kept; Cutoff(now) returns
	// now-Retention for Expire. Default 7 days.
	Retention time.Duration

	// RequiredStages are the stages that must be done (success or skipped)
	// for a transaction to leave in_progress. Default ingress, validate,
	// commit, apply (the stages before the client's ack and the FSM apply);
	// forecast and egress happen later and do not hold the status back,
	// though a failed block of any stage makes the transaction failed.
	RequiredStages []Stage

	// Logger receives lifecycle and Pebble logs. Default: discard.
	Logger *slog.Logger

	// OnWriteError, if set, is called (synchronously, from the apply
	// goroutine) with every error a Recorder method returns, after the
	// error was counted; the FSM uses it to raise an alarm. It must not
	// block. Default nil.
	OnWriteError func(error)

	// ObjectFoldEntries, ObjectFoldCalls and ObjectFoldBytes bound the
	// object index's staging table (keys.go, "Object index"): the
	// RecordObjects call that brings the staged calls to at least this
	// many entries, calls or value bytes folds them all into runs. They
	// decide which bytes a Recorder writes, so they must be equal on
	// every node: use the defaults outside tests (smaller values make
	// more, smaller runs and slower lookups; larger ones let staged values
	// outlive their memtable). Defaults 200,000 entries, 64 calls, 4 MiB.
	ObjectFoldEntries int
	ObjectFoldCalls   int
	ObjectFoldBytes   int

	// VolatileStaging keeps the object index's staged calls in memory
	// instead of writing them into the batch (keys.go, "Volatile
	// staging"): the caller must call Recorder.Published after each
	// commit, persist them with Store.PersistStaged before a snapshot of
	// the state, and rebuild them after a restart with NewRestager from
	// whatever it keeps durable (the FSM: the Raft log). Default false:
	// staged calls go through the batch.
	VolatileStaging bool

	// Dir is the data directory of a standalone store (Open only).
	Dir string
	// FS is the file system of a standalone store (Open only). Default
	// vfs.Default.
	FS vfs.FS
	// CacheSize is the block cache of a standalone store in bytes (Open
	// only). Default 64 MiB.
	CacheSize int64
	// Sync makes Store.Update commit with pebble.Sync (Open only). Default
	// false: NoSync, tracking is not the source of truth for acked data.
	Sync bool
}

// DefaultConfig returns the defaults (Dir left empty).
func DefaultConfig() Config {
	return Config{}.withDefaults()
}

func (c Config) withDefaults() Config {
	if c.Prefix == 0 {
		c.Prefix = 't'
	}
	if c.RunPrefix == 0 {
		c.RunPrefix = 0xfe
	}
	if c.Retention == 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if len(c.RequiredStages) == 0 {
		c.RequiredStages = []Stage{StageIngress, StageValidate, StageCommit, StageApply}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ObjectFoldEntries == 0 {
		c.ObjectFoldEntries = 200_000
	}
	if c.ObjectFoldCalls == 0 {
		c.ObjectFoldCalls = 64
	}
	if c.ObjectFoldBytes == 0 {
		c.ObjectFoldBytes = 4 << 20
	}
	if c.FS == nil {
		c.FS = vfs.Default
	}
	if c.CacheSize == 0 {
		c.CacheSize = 64 << 20
	}
	return c
}

// Validate reports whether the config is usable.
func (c Config) Validate() error {
	if c.Prefix == 0xff {
		return errors.New("tracking: prefix 0xff has no upper bound")
	}
	if c.RunPrefix == 0xff {
		return errors.New("tracking: run prefix 0xff has no upper bound")
	}
	if p, q := c.withDefaults().Prefix, c.withDefaults().RunPrefix; p == q {
		return fmt.Errorf("tracking: run prefix %#x equals the prefix", q)
	}
	if ri := c.RunIngest; ri != nil && (ri.DB == nil || ri.Options == nil || ri.Dir == "") {
		return errors.New("tracking: run ingest needs a DB, its Options and a Dir")
	}
	if c.Retention < 0 {
		return fmt.Errorf("tracking: negative retention %v", c.Retention)
	}
	if c.CacheSize < 0 {
		return fmt.Errorf("tracking: negative cache size %d", c.CacheSize)
	}
	if c.ObjectFoldEntries < 0 || c.ObjectFoldCalls < 0 || c.ObjectFoldBytes < 0 {
		return fmt.Errorf("tracking: negative object fold threshold (%d entries, %d calls, %d bytes)",
			c.ObjectFoldEntries, c.ObjectFoldCalls, c.ObjectFoldBytes)
	}
	for _, st := range c.RequiredStages {
		if st.code() == 0 {
			return fmt.Errorf("tracking: unknown required stage %q", st)
		}
	}
	return nil
}
