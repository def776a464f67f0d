// Package batchslot keeps a Pebble batch between uses, with the buffer of
// its last use. A writer that commits megabytes at a time (an FSM apply, a
// fold, the Raft store's StoreLogs) would otherwise allocate that buffer
// again for every batch: Pebble's own batch pool keeps buffers of up to
// 1 MB only.
package batchslot

import (
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// Slot holds at most one batch. It is safe for concurrent use; a batch
// taken by one caller is not handed to another until it is kept again.
type Slot struct {
	b atomic.Pointer[pebble.Batch]
}

// Take returns the kept batch, or a new one of db with room for size
// bytes whose buffer Reset keeps up to maxKept bytes.
func (s *Slot) Take(db *pebble.DB, size, maxKept int) *pebble.Batch {
	if b := s.b.Swap(nil); b != nil {
		return b
	}
	return db.NewBatchWithSize(size, pebble.WithMaxRetainedSizeBytes(maxKept))
}

// Keep resets b, committed or not, and keeps it for the next Take
// (closing a batch kept meanwhile). Pebble no longer reads a batch's
// buffer once Commit returns, without WAL failover, which no store here
// uses; a batch committed as its own flushable (one too large for the
// memtable) has its buffer dropped by Pebble instead.
func (s *Slot) Keep(b *pebble.Batch) {
	b.Reset()
	if old := s.b.Swap(b); old != nil {
		_ = old.Close()
	}
}

// Close closes the kept batch, if any; call it before closing the DB.
func (s *Slot) Close() {
	if b := s.b.Swap(nil); b != nil {
		_ = b.Close()
	}
}

// Kept reports whether the slot holds a batch (tests).
func (s *Slot) Kept() bool { return s.b.Load() != nil }
