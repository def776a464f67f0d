// Package stream holds the dataset vocabulary (schemas, frequencies,
// periods, series ids) and the decoders that turn request bodies in CSV,
// NDJSON, JSON, XML and Arrow IPC into validated Arrow record batches.
//
// # Role
//
// stream is a leaf package: it imports Arrow but none of node, cluster,
// tracking or forecast. Decoders are pure: they read only from the reader they
// are given, allocate through the injected memory.Allocator and return a
// *Batch whose records the caller must Release.
//
// # Validated batch layout
//
// Every record produced for a dataset has the columns of ArrowSchema, in this
// order:
//
//	_series_id  uint64   stable id of the key dimensions (SeriesID)
//	_row        int32    1-based row number of the record in the request body
//	<period>    date32   start of the period, aligned to the dataset frequency
//	<dimension> utf8     one column per key dimension, in schema order
//	<measure>   float64  the target measure
//	<covariate> float64  one nullable column per covariate
//	<object_id> utf8     nullable, only when the schema names an object-id column
//
// Column names starting with "_" are reserved for the two leading columns.
//
// # Invariants
//
// Row failures never abort a batch: a bad row becomes a RowError in
// Batch.Rejected and the good rows go on. A whole-request error (the body is
// not well-formed in its format) is returned as *SyntaxError and nothing of
// that request is kept.
package stream
