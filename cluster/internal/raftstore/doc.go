// Package raftstore implements hashicorp/raft's LogStore and StableStore on
// a Pebble instance of their own.
//
// The cluster package opens one Store per node in its own directory (never
// shared with the FSM's Pebble instance, so log truncation, compactions and
// syncs of the two do not interfere) and passes it to raft.NewRaft as both
// the log store and the stable store. The on-disk layout is in keys.go.
//
// # Durability
//
// The raft log is the durability point of the cluster: raft acknowledges an
// entry to the leader, and the leader to the client, as soon as StoreLogs
// returns. Every write (StoreLogs, DeleteRange, Set, SetUint64) is therefore
// one Pebble batch committed with pebble.Sync and the WAL is always on.
// StoreLogs writes all its entries in one batch, so a crash keeps all or
// none of them.
//
// # Invariants
//
//   - Log entries live under the log prefix keyed by big-endian index, so
//     key order is index order. Every iterator is bounded to that prefix
//     and its Close error is checked.
//   - FirstIndex and LastIndex are the lowest and highest stored index (0 and
//     0 for an empty log), cached in atomics. They change only under
//     writeMu, after a successful commit, and are recomputed from disk at
//     Open and after a DeleteRange that touches either end.
//   - Gaps are allowed: StoreLogs may leave holes and DeleteRange may punch
//     them; GetLog of a missing index returns raft.ErrLogNotFound. The store
//     therefore does not implement raft.MonotonicLogStore, and raft keeps
//     signalling a restored snapshot with a gap instead of deleting the
//     whole log.
//   - DeleteRange writes a single range tombstone whatever the span. A head
//     truncation (raft's compaction after a snapshot) of at least
//     Config.CompactMinEntries indexes wakes one background goroutine that
//     compacts the truncated key span, so Pebble drops the emptied tables and
//     the space returns to the disk promptly. Pebble's own compactions would
//     reclaim it too, but only once they reach the tombstone.
//   - Get of a missing stable key returns ErrKeyNotFound, whose text is
//     exactly "not found": raft compares error strings.
//
// # Concurrency and lock order
//
// All methods are safe for concurrent use; raft calls GetLog from
// replication goroutines and DeleteRange from its snapshot goroutine while
// the main loop calls StoreLogs. Locks, outermost first:
//
//	closeMu (read by every method and the compactor, write by Close)
//	  -> writeMu (StoreLogs, DeleteRange)
//	    -> compactMu (scheduleCompact, compactLoop; leaf)
//
// The compactor goroutine is owned by the Store; Close cancels it, waits for
// it and only then closes Pebble.
package raftstore
