// Package cluster holds Demandflow's replicated state: the typed FSM
// commands (commands.go), the FSM that applies them to a Pebble store
// (fsm*.go, store.go, keys.go), snapshots (snapshot.go) and, until Raft is
// wired in, the single-node committer Local.
//
// # Write path
//
// The node validates a request into a stream.Batch, encodes it with
// EncodeIngest (one or more entries of at most raft.SuggestedMaxDataSize),
// and commits each entry with Cluster.Apply. Today Apply hands the entry to
// Local, which group-commits concurrent entries into one FSM.ApplyBatch;
// the next step puts hashicorp/raft between commit and apply without
// changing entries, the FSM or the handlers. The FSM implements
// raft.BatchingFSM already.
//
// # Invariants
//
//   - One ApplyBatch is one Pebble batch, and it includes the index and term
//     of its last log, so the stored state and the applied index never
//     disagree; entries at or below the applied index are skipped.
//   - Apply is deterministic: no clocks, randomness or map-order effects;
//     times come from the entries.
//   - Business rejections are error values in the response slot;
//     undecodable entries and unknown non-ignorable commands panic.
//   - Idempotency records (per dataset, idempotency key and part) are in the
//     FSM keyspace, so a retried part is a no-op even after a restart.
//   - Dataset ids are never reused: deleting a dataset drops its keys with
//     range deletes and a re-created name starts empty.
//   - Store reads are safe concurrently with apply; the in-memory catalog
//     and counters are published after each commit.
//
// # Lock order
//
// Local's loop goroutine is the only caller of FSM.ApplyBatch (Raft's FSM
// goroutine later). Store.mu (RWMutex) guards only the dataset catalog map
// and the id allocator; it is never held while calling Pebble or any other
// lock. Store.closeMu is taken only by Close. No other locks exist.
package cluster
