package stream

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// SeriesID returns the stable 64-bit id of the series with the given
// dimension values (in schema order) in dataset. It is xxHash64 over the
// dataset name and each value, every part prefixed by its uvarint length so
// that ("ab","c") and ("a","bc") differ.
//
// WARNING: series ids are stored on disk and in forecasts; changing this
// function breaks every existing dataset.
func SeriesID(dataset string, values []string) uint64 {
	var h xxhash.Digest
	h.Reset()
	var lenBuf [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(lenBuf[:], uint64(len(dataset)))
	_, _ = h.Write(lenBuf[:n])
	_, _ = h.WriteString(dataset)
	for _, v := range values {
		n = binary.PutUvarint(lenBuf[:], uint64(len(v)))
		_, _ = h.Write(lenBuf[:n])
		_, _ = h.WriteString(v)
	}
	return h.Sum64()
}

// SeriesHasher computes SeriesID for many rows of one dataset without
// allocating. It is not safe for concurrent use.
//
// It gathers the length-prefixed parts in a scratch buffer and hashes them
// in one xxhash.Sum64 call: the one-shot hash of the concatenation equals
// the streaming hash SeriesID computes, and is several times faster for the
// short values dimensions usually hold.
type SeriesHasher struct {
	prefix []byte
	buf    []byte
}

// NewSeriesHasher returns a hasher for dataset.
func NewSeriesHasher(dataset string) *SeriesHasher {
	var lenBuf [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(lenBuf[:], uint64(len(dataset)))
	p := append(append([]byte{}, lenBuf[:n]...), dataset...)
	return &SeriesHasher{prefix: p, buf: make([]byte, 0, 256)}
}

// Begin starts a new id; Add each dimension value in schema order; Sum
// returns the id.
func (s *SeriesHasher) Begin() {
	s.buf = append(s.buf[:0], s.prefix...)
}

// Add adds one dimension value.
func (s *SeriesHasher) Add(v []byte) {
	s.buf = binary.AppendUvarint(s.buf, uint64(len(v)))
	s.buf = append(s.buf, v...)
}

// Sum returns the id of the values added since Begin.
func (s *SeriesHasher) Sum() uint64 { return xxhash.Sum64(s.buf) }
