package bufpool

import (
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// nonZero returns the index of the first non-zero byte of b, or -1.
func nonZero(b []byte) int {
	for i, c := range b {
		if c != 0 {
			return i
		}
	}
	return -1
}

// TestClass pins which sizes the pool serves, in which class.
func TestClass(t *testing.T) {
	for _, tc := range []struct {
		size, class int
		ok          bool
	}{
		{0, 0, false}, {32 << 10, 0, false}, {32<<10 + 1, 0, true}, {64 << 10, 0, true},
		{64<<10 + 1, 1, true}, {1 << 20, 4, true}, {1<<26 - 1, 10, true}, {1 << 26, 10, true},
		{1<<26 + 1, 0, false},
	} {
		c, ok := class(tc.size)
		if ok != tc.ok || (ok && c != tc.class) {
			t.Errorf("class(%d): got %d, %v; want %d, %v", tc.size, c, ok, tc.class, tc.ok)
		}
	}
}

// TestAllocateZeroedAndAligned checks what arrow expects of every buffer,
// recycled or not: the asked length, zero bytes, 64-byte alignment.
func TestAllocateZeroedAndAligned(t *testing.T) {
	a := New()
	for _, size := range []int{0, 1, 100, 32 << 10, 32<<10 + 1, 64 << 10, 1<<20 + 3} {
		for round := range 3 {
			b := a.Allocate(size)
			if len(b) != size {
				t.Fatalf("Allocate(%d) round %d: len %d", size, round, len(b))
			}
			if size > 0 && addr(b)%64 != 0 {
				t.Errorf("Allocate(%d) round %d: address %#x not 64-byte aligned", size, round, addr(b))
			}
			if i := nonZero(b); i >= 0 {
				t.Fatalf("Allocate(%d) round %d: byte %d is not zero", size, round, i)
			}
			for i := range b {
				b[i] = 0xa5 // dirty it for the next round
			}
			a.Free(b)
		}
	}
}

// TestRecycles checks that a freed buffer of a pooled size is handed out
// again (sync.Pool may drop a few, above all under the race detector),
// and that a buffer the pool did not hand out is not taken in.
func TestRecycles(t *testing.T) {
	a := New()
	reused := 0
	for range 20 {
		b := a.Allocate(700 << 10)
		p := addr(b)
		a.Free(b)
		c := a.Allocate(1 << 20) // the same 1 MiB class
		if addr(c) == p {
			reused++
		}
		a.Free(c)
	}
	if reused == 0 {
		t.Errorf("no 1 MiB-class buffer was reused in 20 rounds")
	}
	// A foreign buffer (capacity not a class size) is ignored.
	a.Free(make([]byte, 100<<10))
	if b := a.Allocate(100 << 10); cap(b) != 128<<10 {
		t.Errorf("after a foreign Free: cap %d, want %d", cap(b), 128<<10)
	}
}

// TestReallocate checks that contents survive growth within and across
// size classes and that bytes exposed by growth are zero.
func TestReallocate(t *testing.T) {
	a := New()
	b := a.Allocate(40 << 10)
	for i := range b {
		b[i] = byte(i)
	}
	b = b[:10]                  // shrink the view (arrow's Resize does)
	b = a.Reallocate(50<<10, b) // within the 64 KiB class
	for i := range 10 {
		if b[i] != byte(i) {
			t.Fatalf("byte %d: got %d after an in-place grow", i, b[i])
		}
	}
	if i := nonZero(b[10:]); i >= 0 {
		t.Fatalf("byte %d past the old length is not zero", 10+i)
	}
	b = a.Reallocate(3<<20, b) // to the 4 MiB class
	if len(b) != 3<<20 || cap(b) != 4<<20 {
		t.Fatalf("grown: len %d cap %d", len(b), cap(b))
	}
	for i := range 10 {
		if b[i] != byte(i) {
			t.Fatalf("byte %d: got %d after a grow across classes", i, b[i])
		}
	}
	a.Free(b)
}

// TestPoisonUnderRace checks that with the race detector a freed buffer is
// overwritten, which is what makes a use after Free visible in tests.
func TestPoisonUnderRace(t *testing.T) {
	if !raceEnabled {
		t.Skip("poisoning is on only with -race (make test runs it)")
	}
	a := New()
	b := a.Allocate(64 << 10)
	a.Free(b)
	if b[0] != poisonByte || b[len(b)-1] != poisonByte {
		t.Errorf("freed buffer: got %#x..%#x, want %#x", b[0], b[len(b)-1], poisonByte)
	}
}

// TestArrowRoundTrip builds and releases records through the allocator,
// as the ingest path does, and checks with arrow's checked allocator that
// every buffer is freed and the values read back are the ones written,
// also when buffers are recycled from the previous round.
func TestArrowRoundTrip(t *testing.T) {
	pool := New()
	mem := memory.NewCheckedAllocator(pool)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Uint64},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	const n = 20000 // 160 KB of ids: pooled buffers
	for round := range 3 {
		b := array.NewRecordBuilder(mem, schema)
		ids := b.Field(0).(*array.Uint64Builder)
		names := b.Field(1).(*array.StringBuilder)
		for i := range n {
			ids.Append(uint64(i*7 + round))
			if i%5 == 0 {
				names.AppendNull()
			} else {
				names.Append("series-" + string(rune('a'+i%26)))
			}
		}
		rec := b.NewRecordBatch()
		b.Release()
		got := rec.Column(0).(*array.Uint64)
		gotNames := rec.Column(1).(*array.String)
		for i := range n {
			if got.Value(i) != uint64(i*7+round) {
				t.Fatalf("round %d row %d: id %d", round, i, got.Value(i))
			}
			if null := gotNames.IsNull(i); null != (i%5 == 0) {
				t.Fatalf("round %d row %d: null %v", round, i, null)
			}
		}
		rec.Release()
	}
	mem.AssertSize(t, 0)
}
