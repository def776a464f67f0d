// Package client is the Go client of the Demandflow HTTP API: datasets,
// ingest, series and observation reads, and thin wrappers for the tracking
// and forecast endpoints. It imports only the standard library, so it can
// be vendored by users; the protocol (HTTP/1.1, HTTP/2 or HTTP/3) is the
// caller's choice of Config.Transport.
//
// # Retries and failover
//
// Every call goes to the current address of Config.Addrs. A call is retried,
// with exponential backoff and jitter, on:
//
//   - network errors and per-attempt timeouts (Config.Timeout),
//   - 429 Too Many Requests and 503 Service Unavailable (honouring
//     Retry-After, in seconds or as an HTTP date),
//   - 502 and 504,
//   - 421 Misdirected Request and any error body saying "not leader"
//     (a leader change under way).
//
// Everything except 429 also moves the client to the next address (failover,
// round-robin over Addrs). Other 4xx statuses are data or usage errors and
// are never retried: the call returns an *APIError. Ingest sends one
// Idempotency-Key (generated when the caller gives none) on every attempt,
// so a retried batch is stored exactly once: the node answers a repeated key
// with the first result (IngestResult.Replayed).
//
// # Push
//
// A Pusher streams a reader of CSV, NDJSON, JSON-array, XML or Arrow IPC
// data in batches with bounded concurrency; see NewPusher. Memory stays
// O(PushConfig.Batch x PushConfig.Concurrency) whatever the input size.
//
// # Concurrency
//
// A Client and a Pusher are safe for concurrent use. A Client holds no
// goroutines; Push owns its workers and waits for them before it returns.
package client
