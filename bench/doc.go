// Package bench is the ingest benchmark harness behind `demandflow bench
// ingest`: it drives a node or cluster from outside through package client,
// like a user would (it imports client only, never node, cluster or
// stream), and writes a report.
//
// # Rows
//
// Generator makes deterministic monthly demand rows (products x markets x
// months with level, trend, season, noise and intermittent products) into
// the dataset of Schema. Row i depends only on the seed and i, so runs are
// reproducible whatever the concurrency. Bodies are NDJSON or CSV
// (EncodeNDJSON, EncodeCSV); other formats (Arrow IPC) are encoded by the
// caller through Config.Encode, which keeps Arrow out of this package.
//
// # Measurement
//
// Run sends batches with Config.Concurrency requests in flight, each with
// its own Idempotency-Key, and records the ack latency of every batch in an
// HDR histogram (10 us .. 5 min, 3 significant digits). Closed loop by
// default; with Config.Rate the batches are scheduled at fixed intervals
// and latency counts from the scheduled time (no coordinated omission).
// Throughput is acked rows (accepted + rejected) over the wall time from
// the first send to the last ack. Config.Warmup adds the same figures for
// the acks after a warm-up (the first second runs slower: QUIC slow start,
// the node's first memtables, heap growth), beside the whole run's. Batch
// generation runs on the sending goroutines (it costs client CPU) unless
// Config.Pregen is set. Config.Compress "zstd" sends the bodies
// compressed, as a client on a real network would (the node decodes
// Content-Encoding: zstd), by Config.CompressBody: demandflow bench
// passes the level demandflow push uses for the format (the default level
// for Arrow, the fastest for text).
//
// # Report JSON (schema_version 1)
//
//	schema_version  int      1; bumped only when a field is removed or changes meaning
//	kind            string   "ingest"
//	started         string   RFC 3339 start time (UTC)
//	config          object   dataset, format, batch, concurrency, rows | duration_s,
//	                         rate (rows/s, absent = unlimited), seed, pregen,
//	                         compress (Content-Encoding, absent = none),
//	                         labels {proto, targets, local, compress, rate_of_max, calibrated_max_rows_per_s}
//	rows_sent       int      rows in batches sent
//	bytes_sent      int      body bytes sent (compressed bytes with compress)
//	rows_acked      int      rows in acked batches (accepted + rejected)
//	rows_accepted   int      rows the server stored
//	rows_rejected   int      rows the server rejected (validation)
//	bytes_acked     int      body bytes of acked batches
//	batches         int      batches finished (acked + errors)
//	batches_acked   int      batches acked
//	replayed        int      acks that were idempotent replays
//	errors          int      batches not acked after the client's retries
//	retries         int      retried attempts (client.Stats)
//	elapsed_s       float    wall time of the run
//	rows_per_s      float    rows_acked / elapsed_s
//	mb_per_s        float    bytes_acked / 1e6 / elapsed_s
//	latency_ms      object   count, min, mean, p50, p90, p99, p999, max of ack latency
//	timeline        array    per interval (1s): t_s (bucket end), rows_per_s, mb_per_s,
//	                         acks, errors, p50_ms, p99_ms, max_ms
//	error_samples   array    up to 10 error messages
//	cpu             object   CPU time of the measured run (absent when unknown):
//	                         client_s, client_us_per_row (this process), and
//	                         node_s, node_us_per_row (the server's, when
//	                         Config.NodeCPU reads it: bench ingest --local)
//	slowest         array    with Config.Slowest only: the slowest acks, slowest
//	                         first: seq, tx_id, total_ms, queue_ms (behind the
//	                         open-loop schedule), and server {node, upload_ms,
//	                         validate_ms, commit_ms, after_append_ms} from the
//	                         node's tracking log (upload and after-append compare
//	                         the two clocks: exact on one machine), or note
//	                         when the lookup failed
//	steady          object   with Config.Warmup only (absent when the run ended
//	                         first): the acks after the warm-up, over the time
//	                         left: warmup_s, elapsed_s, rows_acked, bytes_acked,
//	                         rows_per_s, mb_per_s, latency_ms (as above), cpu
//	                         (as above, sampled at the warm-up's end)
//
// # Output
//
// Report.WriteTable prints a summary; Report.WriteJSON the JSON above;
// Report.WritePlot draws throughput and latency over time as SVG or PNG
// (hand-written drawing on an SVG or image.RGBA canvas, text with
// x/image's basicfont); AppendResult adds a row to the ingest table of
// bench/RESULTS.md.
package bench
