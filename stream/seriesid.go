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
// short values dimensions usually hold. The buffer's length lives in n (not
// in a re-assigned slice header) so that Add writes no pointers and costs no
// GC write barrier.
type SeriesHasher struct {
	buf     []byte
	n       int
	nPrefix int
}

// NewSeriesHasher returns a hasher for dataset.
func NewSeriesHasher(dataset string) *SeriesHasher {
	var lenBuf [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(lenBuf[:], uint64(len(dataset)))
	p := append(append(make([]byte, 0, 512+len(dataset)), lenBuf[:n]...), dataset...)
	return &SeriesHasher{buf: p[:cap(p)], nPrefix: len(p)}
}

// Begin starts a new id; Add each dimension value in schema order; Sum
// returns the id.
func (s *SeriesHasher) Begin() { s.n = s.nPrefix }

// Add adds one dimension value.
func (s *SeriesHasher) Add(v []byte) {
	if s.n+binary.MaxVarintLen64+len(v) > len(s.buf) {
		s.grow(binary.MaxVarintLen64 + len(v))
	}
	buf := s.buf
	n := s.n
	x := uint64(len(v))
	for x >= 0x80 {
		buf[n] = byte(x) | 0x80
		x >>= 7
		n++
	}
	buf[n] = byte(x)
	n++
	s.n = n + copy(buf[n:], v)
}

func (s *SeriesHasher) grow(extra int) {
	nb := make([]byte, 2*(s.n+extra))
	copy(nb, s.buf[:s.n])
	s.buf = nb
}

// Sum returns the id of the values added since Begin.
func (s *SeriesHasher) Sum() uint64 { return xxhash.Sum64(s.buf[:s.n]) }
