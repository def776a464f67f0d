package cluster

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/demandflow/demandflow/internal/bufpool"
	"github.com/demandflow/demandflow/stream"
)

// TestApplyRecyclesDecodedBuffers checks the FSM's pooled allocator: every
// buffer of the records decoded from entries is freed by the end of the
// apply, and recycling them changes nothing in the state. Under the race
// detector (make test) bufpool poisons every freed buffer, so anything
// that kept reading a record after its release would make the two stores
// differ.
func TestApplyRecyclesDecodedBuffers(t *testing.T) {
	build := checkedMem(t)
	sc := testSchema("d", stream.DuplicatesLast)
	var entries [][]byte
	entries = append(entries, mustCreate(t, sc))
	for tx := range 6 {
		var rows []row
		for i := range 3000 { // 3000-row records: the payload's buffers are pooled sizes
			rows = append(rows, row{fmt.Sprintf("p%03d", i%400), fmt.Sprintf("r%d", (i+tx)%7),
				stream.PeriodFromIndex(int64(600+i%24+tx), stream.Month), float64(i * tx), math.NaN(),
				fmt.Sprintf("obj-%d-%d", tx, i)})
		}
		b := buildBatch(t, build, &sc, rows, 3000, nil)
		// A ULID transaction id, so that tracking indexes the object ids
		// (read from the records without a copy until they are encoded).
		m := trackMeta("d", testTime.Add(time.Duration(tx)*time.Second))
		entries = append(entries, mustIngest(t, m, &sc, b, 0)...)
		b.Release()
	}

	pooled := memory.NewCheckedAllocator(bufpool.New())
	sp := openMemStore(t, nil)
	ap := newApplier(t, sp)
	ap.f.mem = pooled
	sg := openMemStore(t, nil)
	ag := newApplier(t, sg)
	ag.f.mem = memory.NewGoAllocator()
	for _, e := range entries {
		if r, ok := ap.one(e).(error); ok {
			t.Fatalf("apply (pooled): %v", r)
		}
		ag.one(e)
		if n := pooled.CurrentAlloc(); n != 0 {
			t.Fatalf("after an apply: %d bytes still allocated from the pool", n)
		}
	}
	if dp, dg := dumpKeyspace(t, sp), dumpKeyspace(t, sg); dp != dg {
		t.Errorf("pooled and plain allocation reached different states:\npooled: %.2000s\nplain:  %.2000s", dp, dg)
	}
}
