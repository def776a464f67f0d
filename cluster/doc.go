// Package cluster holds Demandflow's replicated state and the machinery
// that replicates it: the typed FSM commands (commands.go), the FSM that
// applies them to a Pebble store (fsm*.go, store.go, keys.go), snapshots
// (snapshot.go), hashicorp/raft on a Pebble log store (raft.go,
// internal/raftstore), gossip membership with hashicorp/memberlist
// (membership.go), the cluster port shared by Raft and forwarding
// (transport.go, forward.go), the leader's duties (leader.go: bootstrap,
// reconcile), alarms (alarm.go, monitor.go, notify.go), data-flow tracking
// inside apply (fsm_tracking.go) and the forecast refresh loop
// (forecaster.go, fsm_forecast.go). Local is a single-node committer for
// tools and FSM benchmarks (Config.Standalone).
//
// # Write path
//
// The node validates a request into a stream.Batch, encodes it with
// EncodeIngest (one or more entries of at most raft.SuggestedMaxDataSize),
// and commits each entry with Cluster.Apply from any node: the leader
// applies it through Raft (Raft's leader loop group-commits concurrent
// Applies into one log write and fsync); a follower forwards the encoded
// entry to the leader over the cluster port and gets back the FSM response
// and the Raft index. ErrNotLeader (nothing was submitted) is retried
// inside Apply until a leader appears or ctx ends; ErrRetryable (outcome
// unknown: leadership lost, connection broken after sending) goes back to
// the client, whose retry with the same idempotency key is deduplicated by
// the FSM.
//
// # Invariants
//
//   - One ApplyBatch is one Pebble batch, and it includes the index and term
//     of its last log, so the stored state and the applied index never
//     disagree; entries at or below the applied index are skipped. Under
//     Raft the FSM store commits without fsync: the synced Raft log is the
//     durability point and a restart replays what the FSM lost (a FSM left
//     behind the newest snapshot is restored from it first).
//   - Apply is deterministic: no clocks, randomness or map-order effects;
//     times come from the entries (or raft.Log.AppendedAt, set by the
//     leader).
//   - Business rejections are error values in the response slot;
//     undecodable entries and unknown non-ignorable commands panic.
//   - Idempotency records (per dataset, idempotency key and part) are in the
//     FSM keyspace, so a retried part is a no-op even after a restart.
//   - Dataset ids are never reused: deleting a dataset drops its keys with
//     range deletes and a re-created name starts empty.
//   - Store reads are safe concurrently with apply; the in-memory catalog
//     and counters are published after each commit.
//   - Observations are staged by apply as one block per record and folded
//     into per-series chunks by a background goroutine (obsstore.go);
//     folding changes the physical layout but never what a read returns,
//     and a folded store holds the same bytes on every node.
//   - Node names are Raft server ids: unique and stable across restarts; a
//     node may come back at a new address and the leader updates it.
//
// # Lock order
//
// Raft's FSM goroutine (or Local's loop) is the only caller of
// FSM.ApplyBatch, and the only goroutine touching dsEntry.known. Store.mu
// (RWMutex) guards only the dataset catalog map and the id allocator; it
// is never held while calling Pebble or any other lock. dirtyState.mu
// (one per dataset) guards the committed dirty marks and is a leaf lock:
// the FSM goroutine takes it to publish a batch's marks, the forecaster to
// copy them. stage.foldMu serialises folds and is taken before
// stage.mu; stage.mu (RWMutex) guards the pending staged blocks: readers
// hold it shared while reading one series, a fold holds it exclusively
// around its Pebble commit, apply exclusively to publish blocks (and around
// its commit when the batch deletes a dataset). Store.closeMu is
// taken only by Close. Alarm state is an atomic.Pointer (no lock);
// Monitor.localMu and each webhook queue mutex are leaf locks.
// membership.mu guards the member table and is a leaf lock; membership
// never calls out while holding it. forwarder.mu guards the idle
// connection pool and is a leaf lock. No lock is held while calling into
// raft or memberlist.
package cluster
