// Package tracking is Demandflow's data-flow tracking store: where every
// ingest transaction, every stage of the write path and every tracked
// object went, kept in Pebble and queryable by transaction, by object, by
// time range and as per-minute statistics.
//
// tracking is a leaf package: it imports Pebble and the standard library
// only. The cluster translates its own types into tracking's (for instance
// stream.RowError into Rejection).
//
// # Models
//
//   - Transaction: one unit of ingest (one request, file, webhook call, SQL
//     page), identified by a ULID assigned at ingress, with dataset, source,
//     content type, bytes, counts in/accepted/rejected, receiving node,
//     client and idempotency key. Its Status is derived (see below).
//   - Block: the record of one stage (ingress, validate, commit, apply,
//     forecast, egress) of one transaction: success, failed or skipped,
//     start and finish time, rows in and out, error, node, CPU time and
//     bytes. A stage recorded several times (a transaction split over
//     several Raft entries) is merged.
//   - Progress: derived from the blocks: stages done of total, the current
//     stage (first missing, or the failed one), the last completed stage and
//     the last error. A transaction interrupted by a crash after commit shows
//     in_progress with current stage apply.
//   - Rejection: a rejected row of a transaction (row, object id, field,
//     reason), paged per transaction.
//   - Object entries: for datasets with an object-id column and tracking of
//     objects enabled, one entry per (object id, time, transaction, row,
//     stage) with its outcome; rejected entries keep field and reason, so a
//     rejected row is findable by object id. Entries are stored as
//     hash-bucketed chunks (keys.go, "Object index"): a RecordObjects call
//     writes one time-ordered staging key holding all its chunks, and
//     about every 200,000 staged entries a call folds the staged calls
//     into bucket-major runs (one key per bucket per run), which it
//     ingests into Pebble's bottom level as one sstable (Config.RunIngest)
//     so that compactions never rewrite them. Object reads the object's bucket of every run and staged call
//     of each day and returns the journey in time order.
//   - Statistics: per-minute counters per stage, dataset, source and node,
//     each with a 64-bucket latency histogram (stats.go).
//
// Status rules, in order: a failed block -> failed; required stages
// (Config.RequiredStages, default ingress..apply) not all done ->
// in_progress; all rows rejected -> failed; some rows rejected ->
// partially_failed; otherwise succeeded.
//
// # Writing
//
// The cluster FSM owns one Pebble instance and writes tracking records into
// the same batch as the applied data and the applied index, so tracking is
// atomic with the apply: Store.NewRecorder(db, batch) returns a Recorder
// for that batch (RecordTransaction, RecordBlock, RecordRejections,
// RecordObjects, Expire). One Recorder per batch matters: status,
// statistics and the object index's counters are read-modify-writes, and
// a Recorder's overlay is what lets a later record in the batch see an
// earlier one (an unindexed Pebble batch cannot be read); a fold of the
// object index also needs the calls staged earlier in the batch, which
// the Recorder keeps. All tracking keys live below Config.Prefix, but for
// the object index's runs below Config.RunPrefix (keys.go has the layout);
// with Config.RunIngest a fold ingests its runs before the batch commits,
// which is safe because a replay folds again into the same bytes. The
// FSM also sets Config.VolatileStaging: staged object calls stay in
// memory, published by Recorder.Published after each commit, persisted by
// Store.PersistStaged when Raft snapshots, and rebuilt after a restart by
// a Restager from the replayed entries (keys.go, "Volatile staging").
// Open gives a standalone store with its own Pebble instance and
// Store.Update for tests and for nodes that keep tracking apart; both
// modes share the code.
//
// # Stages after apply
//
// The FSM records ingress, validate, commit and apply from the ingest
// entries themselves (cluster/fsm_tracking.go). Forecast and egress blocks
// come later, from whichever node did the work, through
// cluster.Cluster.RecordBlocks: queued without blocking, proposed as one
// CmdTrackBlocks Raft entry per 200 ms or 500 blocks, dropped and counted
// when the queue is full. Egress means a delivery that moves a
// transaction's data out of the cluster (export jobs, webhook
// subscriptions); plain reads (GET observations or forecasts) are not
// tracked, because a Raft write per GET would cost more than the read
// itself. Apply has no duration of its own: its times are the leader's
// append times (raft.Log.AppendedAt), never a clock read during apply.
//
// # Invariants
//
//   - Tracking never fails an ingest: Recorder errors are counted
//     (Store.WriteErrors), passed to Config.OnWriteError (the FSM raises an
//     alarm) and returned, and the caller carries on with the ingest.
//   - Determinism: records are written by the deterministic FSM apply on
//     every node, so the store never reads the clock or a random source
//     while writing; all times come from the records, encodings are fixed
//     byte layouts, and the same calls on the same state write the same
//     bytes on every node, whatever the batch boundaries (TestDeterminism,
//     TestObjectIndexDeterminism). This includes when the object index
//     folds: its counters are replicated state and its thresholds
//     (Config.ObjectFold*) must be equal on every node; runs have the same
//     keys and values whether ingested or written into the batch. With
//     Config.VolatileStaging the staged calls live in memory until a fold
//     or PersistStaged, so the staging table's bytes depend on when a node
//     persisted; the answers do not. Queries therefore
//     return the same answer on every node that applied the same index.
//   - Retention is range deletes over time-prefixed key ranges only
//     (retention.go); the cutoff comes from a replicated command.
//
// # Concurrency
//
// A Store is safe for concurrent use; queries take a Reader (a *pebble.DB
// or a *pebble.Snapshot for a consistent multi-query view). A Recorder
// belongs to one batch and one goroutine. There are no locks.
package tracking
