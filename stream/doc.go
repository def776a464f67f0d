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
// # Decoding
//
// Decode(ctx, format, body, schema, cfg) picks a decoder from an explicit
// table (decode.go; no init registration). Every format carries fields by
// column name; unknown columns are ignored:
//
//   - CSV (decode_csv.go): RFC 4180 with a header row, "" escapes, LF or
//     CRLF, optional UTF-8 BOM, blank lines skipped.
//   - NDJSON (decode_ndjson.go): one JSON object per line, blank lines
//     skipped; row numbers count objects, not lines.
//   - JSON (decode_json.go): one top-level array of objects.
//   - XML (decode_xml.go): any root element; each child element of the root
//     is one record; a record's fields are its child elements
//     (<record><period>2024-01</period><qty>3</qty></record>) or its
//     attributes (<record period="2024-01" qty="3"/>), which may be mixed.
//   - Arrow (decode_arrow.go): an IPC stream; typed columns (date32/date64/
//     timestamp periods, dictionary or integer dimensions, any numeric
//     measure) are converted; batches already in the output types are
//     reused zero-copy.
//
// Numeric fields take numbers or numeric strings (blanks around them are
// trimmed) and must be finite; dimension and object-id fields take strings,
// numbers or booleans, kept as their text. An empty value or JSON null is
// missing. Period, dimensions and measure are always required, covariates
// and object id only when their Rule says so.
//
// The text decoders read the body whole (bounded by DecodeConfig.MaxBytes)
// and scan bytes by hand, appending straight into Arrow builders: no
// encoding/csv or encoding/json and no allocation per row in steady state.
//
// # Invariants
//
// Row failures never abort a batch: a bad row becomes a RowError in
// Batch.Rejected and the good rows go on. A whole-request error (the body is
// not well-formed in its format) is returned as *SyntaxError and nothing of
// that request is kept. Each rejected row gives exactly one RowError (its
// first failing field, in column order), so len(Batch.Rejected) is the
// number of rejected rows; a rejected row keeps its object id when that
// column could be read.
package stream
