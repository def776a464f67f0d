// Package bufpool is an Apache Arrow memory.Allocator that recycles the
// large buffers of the ingest path.
//
// Why: a node decodes every ingest body (stream.Decode) and every applied
// Raft entry (cluster's decodeRows) into Arrow records whose buffers are
// a megabyte or so each, freed a few milliseconds later. Fresh from the Go
// heap, each one costs a large-object allocation, a clear, page faults
// on memory the runtime had returned to the OS, and GC work. Recycled,
// it costs a clear of warm memory. Measured on the 2-core box: 6% less
// node CPU per row at 1.5M rows/s (bench/RESULTS.md, session 2026-12-06
// 23:00); a page fault there costs about 10 us.
//
// The contract is arrow's: a buffer handed to Free must not be used again.
// Arrow's reference counting calls Free when the last Release drops a
// buffer, so everything read from a record (a string from String.Value,
// a slice from ValueBytes) must be copied before the record is released.
// With the race detector on, Free overwrites the buffer with poisonByte
// first, so that a use after Free shows up as wrong data in tests.
package bufpool

import (
	"math/bits"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

const (
	// Buffers of at most 1<<(minShift-1) bytes come from the Go allocator:
	// small ones are cheap and many (validity bitmaps, offsets).
	minShift = 16
	// Buffers above 1<<maxShift bytes come from the Go allocator too, so
	// a rare huge one is not kept alive by the pool.
	maxShift = 26

	// poisonByte fills freed buffers when the race detector is on.
	poisonByte = 0xdb
)

// Allocator recycles buffers of more than 32 KiB and up to 64 MiB in
// power-of-two size classes through sync.Pool (so an idle pool empties
// over two garbage collections). Like memory.GoAllocator, it returns
// zeroed, 64-byte aligned memory. It is safe for concurrent use.
type Allocator struct {
	small   memory.GoAllocator
	classes [maxShift - minShift + 1]sync.Pool // of *[]byte with len == cap == class size
}

var _ memory.Allocator = (*Allocator)(nil)

// New returns an empty Allocator.
func New() *Allocator { return &Allocator{} }

// class returns the size class of a size-byte buffer and whether the pool
// serves that size.
func class(size int) (int, bool) {
	if size < 1<<(minShift-1)+1 || size > 1<<maxShift {
		return 0, false
	}
	return max(bits.Len(uint(size-1)), minShift) - minShift, true
}

// Allocate returns size zeroed bytes.
func (a *Allocator) Allocate(size int) []byte {
	c, ok := class(size)
	if !ok {
		return a.small.Allocate(size)
	}
	if p, _ := a.classes[c].Get().(*[]byte); p != nil {
		b := (*p)[:size]
		clear(b)
		return b
	}
	// A make of 64 KiB or more is a large object: page aligned.
	return make([]byte, size, 1<<(c+minShift))
}

// Reallocate returns b resized to size with its contents kept; bytes past
// the old length are zero. b must not be used afterwards.
func (a *Allocator) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) {
		if size > len(b) {
			clear(b[len(b):size])
		}
		return b[:size]
	}
	nb := a.Allocate(size)
	copy(nb, b)
	a.Free(b)
	return nb
}

// Free takes b back for reuse. Buffers the pool did not hand out (small,
// huge or from another allocator) are left to the garbage collector.
func (a *Allocator) Free(b []byte) {
	c, ok := class(cap(b))
	if !ok || cap(b) != 1<<(c+minShift) {
		return
	}
	b = b[:cap(b)]
	if raceEnabled {
		for i := range b {
			b[i] = poisonByte
		}
	}
	a.classes[c].Put(&b)
}
