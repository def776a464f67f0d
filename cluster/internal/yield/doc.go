// Package yield makes a node's background work (Pebble flushes and
// compactions, the observation folder) give its CPU to request handling
// often, instead of holding a processor for the Go scheduler's 10 ms
// preemption slice.
//
// Why: a node on two cores runs the ingest path (QUIC, decode, Raft, FSM
// apply, the reply) beside flushes, compactions and folds that each keep a
// core busy for 20-300 ms. A goroutine of the ingest path woken while both
// processors run background work waited for one of them to be preempted,
// and an ack passes through several such hand-offs, so one burst added
// 30-80 ms to every request in flight: most of the ack latency's p99 at
// half the maximum throughput (bench/RESULTS.md, section "Session
// 2026-12-06 17:22-19:20"). runtime.Gosched after each unit of background
// work puts the background goroutine behind whatever is runnable, and
// costs nothing measurable when nothing is.
//
// FS wraps a Pebble vfs.FS so that writes to the files of flushes and
// compactions yield after each write (Pebble writes their tables in
// buffered chunks of tens of KiB). Every and Counter yield from loops the
// caller owns.
package yield
