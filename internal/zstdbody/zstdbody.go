// Package zstdbody compresses request bodies with zstd the way demandflow
// push sends them. demandflow bench ingest compresses with it too (as
// bench.Config.CompressBody), so that the benchmark measures the bytes
// push puts on the wire.
//
// The level depends on the body's format. zstd's fastest level finds
// little to match in an Arrow IPC stream's column buffers. The default
// level compresses the same stream twice as well, for about twice the
// encode time. Text formats already compress well at the fastest level.
// Generated demand rows, 10,000 a body (TestBodyZstdLevels in
// cmd/demandflow, where the Arrow encoder lives, checks and prints them):
//
//	format  raw B/row  fastest B/row  default B/row  encode ns/row (fastest / default)
//	arrow   48         20.7           10.8           150 / 281
//	ndjson  100        7.0            8.1            233 / 355
//	csv     36         6.2            6.2            248 / 193
//
// Over HTTP/3 every packet costs CPU on both ends, so halving an Arrow
// body's bytes saves more than the extra encode time costs.
// `demandflow bench ingest --local --proto h3 --format arrow` showed this
// on the 2-core VM: the client's CPU per row fell by a third, and
// throughput rose in 4 of 4 pairs (bench/RESULTS.md).
package zstdbody

import (
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Level returns the zstd level for bodies of format (a client.Format
// string: "arrow", "csv", "ndjson", "json", "xml").
func Level(format string) zstd.EncoderLevel {
	if format == "arrow" {
		return zstd.SpeedDefault
	}
	return zstd.SpeedFastest
}

// encoders are built on first use, since most commands never compress.
// An encoder's EncodeAll is safe for concurrent use, up to GOMAXPROCS
// calls at a time.
var encoders = map[zstd.EncoderLevel]func() *zstd.Encoder{
	zstd.SpeedFastest: sync.OnceValue(func() *zstd.Encoder { return newEncoder(zstd.SpeedFastest) }),
	zstd.SpeedDefault: sync.OnceValue(func() *zstd.Encoder { return newEncoder(zstd.SpeedDefault) }),
}

func newEncoder(level zstd.EncoderLevel) *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level))
	if err != nil {
		// Only invalid options fail, and these are constants.
		panic("zstdbody: " + err.Error())
	}
	return e
}

// Encode returns body compressed as one zstd frame at format's level. It
// is safe for concurrent use.
func Encode(format string, body []byte) []byte {
	return encoders[Level(format)]().EncodeAll(body, make([]byte, 0, len(body)/4))
}
