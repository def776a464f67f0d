// Package node runs one Demandflow node: it reads the configuration, opens
// the cluster layer (FSM state on Pebble; Raft once the cluster issue lands),
// and serves the HTTP API.
//
// # Request flow
//
// Ingest follows DESIGN.md's write path explicitly:
//
//	ingress (body limit, decompression, idempotency replay)
//	  -> validate (stream.Decode: rows into Arrow records + rejected rows)
//	  -> commit  (cluster.EncodeIngest parts, cluster.Apply each part; the
//	              ack waits for the commit, which is durable before it returns)
//	  -> apply   (inside cluster: FSM writes the series store)
//
// node is the only package that maps errors to HTTP statuses (errorStatus in
// errors.go). Every error response is JSON {"error": "...", "detail": ...}.
//
// # Files on disk
//
// <data-dir>/addrs.json holds the addresses the node actually bound
// ({"http":..., "http3":..., "raft":..., "gossip":...}), written after the
// listeners are up, so scripts and tests that asked for port 0 can find them.
package node
