package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/demandflow/demandflow/stream"
)

// chunkOf encodes (period, measure, sum flag) triples as a chunk body.
func chunkOf(entries ...[3]float64) []byte {
	var body []byte
	for _, e := range entries {
		v := appendObsValue(nil, e[1], nil, nil, "", false)
		if e[2] != 0 {
			v[0] |= obsFlagSum
		}
		body = appendChunkEntry(body, biasPeriod(int32(e[0])), v)
	}
	return body
}

func decodeChunk(t *testing.T, body []byte) [][3]float64 {
	t.Helper()
	var out [][3]float64
	for len(body) > 0 {
		e, rest, ok := nextChunkEntry(body)
		if !ok {
			t.Fatalf("corrupt chunk %x", body)
		}
		m, _ := obsMeasure(e.val)
		out = append(out, [3]float64{float64(unbiasPeriod(e.period)), m, float64(e.val[0] & obsFlagSum >> 1)})
		body = rest
	}
	return out
}

func TestMergeChunkBodiesRule(t *testing.T) {
	a := chunkOf([3]float64{1, 10, 0}, [3]float64{2, 20, 1}, [3]float64{5, 50, 0})
	b := chunkOf([3]float64{2, 2, 1}, [3]float64{3, 3, 0}, [3]float64{5, 5, 1})
	c := chunkOf([3]float64{1, 1, 0}, [3]float64{5, 7, 1}, [3]float64{9, 9, 1})
	merge := func(o, n []byte) []byte {
		out, err := mergeChunkBodies(nil, o, n)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	left := merge(merge(a, b), c)
	right := merge(a, merge(b, c))
	want := [][3]float64{
		{1, 1, 0},  // c replaces
		{2, 22, 1}, // sum onto a sum: still adds to older data
		{3, 3, 0},
		{5, 62, 0}, // set 50, +5, +7: a set
		{9, 9, 1},
	}
	if got := decodeChunk(t, left); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("(a+b)+c: got %v, want %v", got, want)
	}
	if string(left) != string(right) {
		t.Fatalf("merge is not associative:\n%v\n%v", decodeChunk(t, left), decodeChunk(t, right))
	}
	if _, err := mergeChunkBodies(nil, []byte{1, 2}, b); err == nil {
		t.Fatal("corrupt older chunk merged without error")
	}
}

// TestChunkMergerPooled: the sum operator's chunk merger gives the same
// result as mergeChunkBodies, and the value Finish returns stays intact
// until Pebble closes the merger, however many mergers run meanwhile; a
// closed merger is reused.
func TestChunkMergerPooled(t *testing.T) {
	a := chunkOf([3]float64{1, 10, 0}, [3]float64{2, 20, 1}, [3]float64{5, 50, 0})
	b := chunkOf([3]float64{2, 2, 1}, [3]float64{3, 3, 0}, [3]float64{5, 5, 1})
	c := chunkOf([3]float64{1, 1, 0}, [3]float64{5, 7, 1}, [3]float64{9, 9, 1})
	op := func(body []byte) []byte { return append([]byte{chunkVersion}, body...) }
	key := chunkKey(1, 42)
	// run merges older, mid and newer.
	run := func(older, mid, newer []byte) ([]byte, io.Closer) {
		vm, err := sumMerger.Merge(key, op(mid))
		if err != nil {
			t.Fatal(err)
		}
		if err := vm.MergeOlder(op(older)); err != nil {
			t.Fatal(err)
		}
		if err := vm.MergeNewer(op(newer)); err != nil {
			t.Fatal(err)
		}
		v, closer, err := vm.Finish(true)
		if err != nil || closer == nil {
			t.Fatalf("Finish: closer %v, error %v; want a closer", closer, err)
		}
		return v, closer
	}
	ab, _ := mergeChunkBodies(nil, a, b)
	want, _ := mergeChunkBodies(nil, ab, c)
	cb, _ := mergeChunkBodies(nil, c, b)
	other, _ := mergeChunkBodies(nil, cb, a)
	v1, c1 := run(a, b, c)
	held := bytes.Clone(v1)
	if string(v1) != string(op(want)) {
		t.Fatalf("merged value: got %v, want %v", decodeChunk(t, v1[1:]), decodeChunk(t, want))
	}
	for range 10 {
		v, closer := run(c, b, a)
		if string(v) != string(op(other)) {
			t.Fatal("a later merger's value is wrong")
		}
		if err := closer.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if string(v1) != string(held) {
		t.Fatal("the value of a merger not yet closed changed while other mergers ran")
	}
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sumMerger.Merge(key, []byte{9}); err == nil {
		t.Fatal("bad chunk operand merged without error")
	}
}

// obsModel is the expected content of one (series, period).
type obsModel struct {
	qty, price float64
	obj        string
}

// TestStagedObservationsModel applies random batches under both duplicate
// policies with folds, reopens and snapshot restores at random points, and
// checks every read against a model; a replica that folds only at the end
// must hold the same bytes.
func TestStagedObservationsModel(t *testing.T) {
	for _, policy := range []stream.DuplicatePolicy{stream.DuplicatesLast, stream.DuplicatesSum} {
		t.Run(string(policy), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(len(policy))))
			mem := checkedMem(t)
			fs := vfs.NewMem()
			open := func() *Store {
				s, err := OpenStore(StoreConfig{Dir: "fsm", FS: fs, Logger: testLogger(t), CacheSize: 8 << 20,
					MemTableSize: 4 << 20, FoldRows: 1 << 30, FoldInterval: 1 << 40})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			s := open()
			defer func() { _ = s.Close() }()
			replica := openMemStore(t, nil)
			a, ra := newApplier(t, s), newApplier(t, replica)
			sc := testSchema("d", policy)
			a.one(mustCreate(t, sc))
			ra.one(mustCreate(t, sc))
			products := []string{"p1", "p2", "p3", "p4", "p5"}
			model := map[string]map[int32]obsModel{}
			for step := range 40 {
				var rows []row
				for range 1 + rng.IntN(30) {
					r := row{product: products[rng.IntN(len(products))], region: "EU",
						period: int32(rng.IntN(12)), qty: float64(rng.IntN(100)), price: float64(rng.IntN(9)),
						obj: fmt.Sprintf("o%d", rng.IntN(1000))}
					if rng.IntN(4) == 0 {
						r.price = math.NaN()
					}
					rows = append(rows, r)
					m := model[r.product]
					if m == nil {
						m = map[int32]obsModel{}
						model[r.product] = m
					}
					old := m[r.period]
					n := obsModel{qty: r.qty, price: r.price, obj: r.obj}
					if policy == stream.DuplicatesSum {
						n.qty += old.qty
					}
					m[r.period] = n
				}
				b := buildBatch(t, mem, &sc, rows, 1+rng.IntN(10), nil)
				entries := mustIngest(t, meta("d", fmt.Sprintf("tx%d", step), ""), &sc, b, 0)
				b.Release()
				a.batch(entries...)
				ra.batch(entries...)
				switch rng.IntN(6) {
				case 0:
					if err := s.foldStaged(); err != nil {
						t.Fatal(err)
					}
				case 1:
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					s = open()
					a = newApplier(t, s)
				case 2:
					s2 := snapshotRoundTrip(t, s)
					checkObservations(t, s2, &sc, model)
				case 3:
					// A compaction merges the chunk operands with pooled
					// mergers (chunkValueMerger) while reads merge too.
					done := make(chan error, 1)
					go func() { done <- s.db.Compact(t.Context(), []byte{0}, []byte{0xff}, true) }()
					checkObservations(t, s, &sc, model)
					if err := <-done; err != nil {
						t.Fatal(err)
					}
				}
				checkObservations(t, s, &sc, model)
			}
			checkObservations(t, replica, &sc, model)
			if dumpKeyspace(t, s) != dumpKeyspace(t, replica) {
				t.Fatal("a store that folded along the way differs from one that folded once")
			}
			// Everything folded: no staged keys are left.
			pending := len(s.stage.pending())
			if pending != 0 {
				t.Fatalf("%d blocks pending after fold", pending)
			}
			checkObservations(t, s, &sc, model)
		})
	}
}

func checkObservations(t *testing.T, s *Store, sc *stream.Schema, model map[string]map[int32]obsModel) {
	t.Helper()
	for product, m := range model {
		sid := stream.SeriesID(sc.Name, []string{product, "EU"})
		got, err := s.Observations(t.Context(), sc.Name, sid, math.MinInt32, math.MaxInt32)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(m) {
			t.Fatalf("%s: got %d observations, want %d", product, len(got), len(m))
		}
		for _, o := range got {
			w, ok := m[o.Period]
			if !ok {
				t.Fatalf("%s: unexpected period %d", product, o.Period)
			}
			price := o.Covariates[0]
			if o.Value != w.qty || o.ObjectID != w.obj || !(price == w.price || math.IsNaN(price) && math.IsNaN(w.price)) {
				t.Fatalf("%s period %d: got %v %v %q, want %v %v %q", product, o.Period, o.Value, price, o.ObjectID, w.qty, w.price, w.obj)
			}
		}
		// A window reads a subset.
		part, err := s.Observations(t.Context(), sc.Name, sid, 3, 5)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range part {
			if o.Period < 3 || o.Period > 5 {
				t.Fatalf("%s: period %d outside [3, 5]", product, o.Period)
			}
		}
	}
}

// TestLegacyObservationsRead checks that observation keys of the layout
// before staging are still read, as the oldest layer.
func TestLegacyObservationsRead(t *testing.T) {
	mem := checkedMem(t)
	fs := vfs.NewMem()
	s := openMemStore(t, fs)
	a := newApplier(t, s)
	sc := testSchema("d", stream.DuplicatesSum)
	a.one(mustCreate(t, sc))
	e := s.dataset("d")
	sid := stream.SeriesID("d", []string{"p", "EU"})
	b := s.db.NewBatch()
	for p := int32(1); p <= 3; p++ {
		v := appendObsValue(nil, float64(p*100), []float64{0}, []bool{true}, "", false)
		if err := b.Set(appendObsKey(nil, e.id, sid, p), v, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(s.wo); err != nil {
		t.Fatal(err)
	}
	_ = b.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openMemStore(t, fs)
	a = newApplier(t, s)
	batch := buildBatch(t, mem, &sc, []row{{"p", "EU", 2, 5, 1, ""}, {"p", "EU", 4, 7, 1, ""}}, 10, nil)
	defer batch.Release()
	a.batch(mustIngest(t, meta("d", "tx", ""), &sc, batch, 0)...)
	for round := range 2 {
		got, err := s.Observations(t.Context(), "d", sid, math.MinInt32, math.MaxInt32)
		if err != nil {
			t.Fatal(err)
		}
		var vals []float64
		for _, o := range got {
			vals = append(vals, o.Value)
		}
		if want := []float64{100, 205, 300, 7}; fmt.Sprint(vals) != fmt.Sprint(want) {
			t.Fatalf("round %d: got %v, want %v", round, vals, want)
		}
		if err := s.foldStaged(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStagedBlocksOfDeletedDataset checks that pending blocks of a deleted
// dataset are neither read nor folded into chunks.
func TestStagedBlocksOfDeletedDataset(t *testing.T) {
	mem := checkedMem(t)
	s := openMemStore(t, nil)
	a := newApplier(t, s)
	sc := testSchema("d", "")
	a.one(mustCreate(t, sc))
	b := buildBatch(t, mem, &sc, []row{{"p", "EU", 1, 5, 1, ""}}, 10, nil)
	defer b.Release()
	a.batch(mustIngest(t, meta("d", "tx", ""), &sc, b, 0)...)
	a.one(mustDelete(t, "d"))
	if err := s.foldStaged(); err != nil {
		t.Fatal(err)
	}
	if got := dumpKeyspace(t, s); containsPrefix(t, s, prefixChunk) || containsPrefix(t, s, prefixStaged) {
		t.Fatalf("observation keys left after delete:\n%s", got)
	}
}

func containsPrefix(t *testing.T, s *Store, p byte) bool {
	found := false
	if err := s.scan(t.Context(), []byte{p}, []byte{p + 1}, func(_, _ []byte) (bool, error) {
		found = true
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	return found
}

// TestBlockBuilderIndex checks that the index a builder returns equals what
// decoding its bytes (as a reload does) gives.
func TestBlockBuilderIndex(t *testing.T) {
	for _, sum := range []bool{false, true} {
		var bb blockBuilder
		bb.reset(sum, 8)
		val := func(m float64) []byte { return appendObsValue(nil, m, nil, nil, "o", true) }
		bb.add(1, 10, val(1))
		bb.add(1, 10, val(2)) // duplicate
		bb.add(1, 11, val(3))
		bb.add(5, 10, val(4))
		bb.add(9, 12, val(5))
		got := bb.finish(3, []byte("k"))
		want, err := decodeStagedBlock(3, []byte("k"), got.val)
		if err != nil {
			t.Fatal(err)
		}
		bodies := func(b *stagedBlock) (out [][]byte) {
			for i := range b.offs {
				out = append(out, b.bodyAt(i))
			}
			return out
		}
		if fmt.Sprint(got.sids, got.offs, bodies(got), got.rows) != fmt.Sprint(want.sids, want.offs, bodies(want), want.rows) || got.rows != 4 {
			t.Fatalf("sum=%v: builder index %v %v %v rows %d, decoded %v %v %v rows %d", sum,
				got.sids, got.offs, bodies(got), got.rows, want.sids, want.offs, bodies(want), want.rows)
		}
		first := decodeChunk(t, got.body(1))
		if wantM := map[bool]float64{false: 2, true: 3}[sum]; first[0][1] != wantM {
			t.Fatalf("sum=%v: duplicate resolved to %v, want %v", sum, first[0][1], wantM)
		}
	}
}

// openSumStore opens an in-memory store that folds only when told, with
// dataset "d" under the "sum" policy.
func openSumStore(t *testing.T) (*Store, *applier, stream.Schema) {
	t.Helper()
	s, err := OpenStore(StoreConfig{Dir: "fsm", FS: vfs.NewMem(), Logger: testLogger(t), CacheSize: 8 << 20,
		MemTableSize: 4 << 20, FoldRows: 1 << 30, FoldInterval: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	a := newApplier(t, s)
	sc := testSchema("d", stream.DuplicatesSum)
	a.one(mustCreate(t, sc))
	return s, a, sc
}

// TestFoldWhileApplyingAndReading folds continuously while batches are
// applied and a reader sums one series: every batch adds k to period 1
// under the "sum" policy, so a reader that saw a block both pending and
// folded would read more than was applied, and one that saw it neither
// would read less than before. Applies must not wait for folds' commits
// (stage.pubMu), and neither may reads tear.
func TestFoldWhileApplyingAndReading(t *testing.T) {
	const batches, k = 60, 7
	mem := checkedMem(t)
	s, a, sc := openSumStore(t)
	rows := make([]row, k)
	for i := range rows {
		rows[i] = row{product: "p", region: "EU", period: 1, qty: 1, price: 1}
	}
	entries := make([][]byte, batches)
	for i := range entries {
		b := buildBatch(t, mem, &sc, rows, k, nil)
		entries[i] = mustIngest(t, meta("d", fmt.Sprintf("tx%d", i), ""), &sc, b, 0)[0]
		b.Release()
	}
	sid := stream.SeriesID("d", []string{"p", "EU"})
	var applied atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for _, e := range entries {
			a.one(e)
			applied.Add(1)
		}
	})
	folds := 0
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := s.foldStaged(); err != nil {
				t.Error(err)
				return
			}
			folds++
		}
	})
	reads, last := 0, 0.0
	for loop := true; loop; {
		select {
		case <-done:
			loop = false
		default:
		}
		obs, err := s.Observations(t.Context(), "d", sid, math.MinInt32, math.MaxInt32)
		if errors.Is(err, ErrUnknownSeries) {
			continue // the first batch is not applied yet
		}
		if err != nil {
			t.Fatal(err)
		}
		// One apply may be published but not yet counted.
		upper := float64((applied.Load() + 1) * k)
		got := 0.0
		if len(obs) == 1 {
			got = obs[0].Value
		}
		if len(obs) > 1 || got > upper || got < last {
			t.Fatalf("read %d: %v (%d observations), after %v, with at most %v applied", reads, got, len(obs), last, upper)
		}
		last = got
		reads++
	}
	wg.Wait()
	if err := s.foldStaged(); err != nil {
		t.Fatal(err)
	}
	obs, err := s.Observations(t.Context(), "d", sid, math.MinInt32, math.MaxInt32)
	if err != nil || len(obs) != 1 || obs[0].Value != batches*k {
		t.Fatalf("after the last fold: %v, %v; want one observation of %d", obs, err, batches*k)
	}
	t.Logf("%d reads during %d folds", reads, folds)
}

// TestReadDuringFoldCommit reads a series between a fold's commit and the
// removal of its blocks from the pending list: the read must wait for the
// fold and see each row once.
func TestReadDuringFoldCommit(t *testing.T) {
	mem := checkedMem(t)
	s, a, sc := openSumStore(t)
	b := buildBatch(t, mem, &sc, []row{{"p", "EU", 1, 5, 1, ""}, {"p", "EU", 1, 2, 1, ""}}, 2, nil)
	a.batch(mustIngest(t, meta("d", "tx", ""), &sc, b, 0)...)
	b.Release()
	sid := stream.SeriesID("d", []string{"p", "EU"})
	var got []Observation
	var readErr error
	var wg sync.WaitGroup
	b2 := buildBatch(t, mem, &sc, []row{{"p", "EU", 2, 1, 1, ""}}, 1, nil)
	defer b2.Release()
	foldCommitted = func() {
		wg.Go(func() { got, readErr = s.Observations(t.Context(), "d", sid, math.MinInt32, math.MaxInt32) })
		time.Sleep(50 * time.Millisecond) // room for a read that does not wait
		// An apply meanwhile does not wait for the fold.
		applied := make(chan struct{})
		wg.Go(func() {
			a.batch(mustIngest(t, meta("d", "tx2", ""), &sc, b2, 0)...)
			close(applied)
		})
		select {
		case <-applied:
		case <-time.After(5 * time.Second):
			t.Error("an apply waited for the fold's commit")
		}
	}
	defer func() { foldCommitted = nil }()
	if err := s.foldStaged(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// The read may also see the apply's period 2, published meanwhile.
	if readErr != nil || len(got) < 1 || got[0].Period != 1 || got[0].Value != 7 {
		t.Fatalf("read during the fold's commit: %v, %v; want period 1 at 7", got, readErr)
	}
	if got, err := s.Observations(t.Context(), "d", sid, math.MinInt32, math.MaxInt32); err != nil || len(got) != 2 || got[1].Value != 1 {
		t.Fatalf("after the fold: %v, %v; want periods 1 and 2", got, err)
	}
}

// TestMergeChunkBodiesAppend: a newer body entirely after the older one
// (the common case) merges to the concatenation, and a corrupt older body
// is still refused on that path.
func TestMergeChunkBodiesAppend(t *testing.T) {
	a := chunkOf([3]float64{1, 10, 0}, [3]float64{4, 40, 1})
	b := chunkOf([3]float64{5, 5, 1}, [3]float64{7, 7, 0})
	out, err := mergeChunkBodies(nil, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, append(bytes.Clone(a), b...)) {
		t.Fatalf("append merge: got %v", decodeChunk(t, out))
	}
	// The same periods the other way round interleave through the walk.
	out, err = mergeChunkBodies(nil, b, a)
	if err != nil {
		t.Fatal(err)
	}
	want := [][3]float64{{1, 10, 0}, {4, 40, 1}, {5, 5, 1}, {7, 7, 0}}
	if got := decodeChunk(t, out); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("walk merge: got %v, want %v", got, want)
	}
	if _, err := mergeChunkBodies(nil, append(bytes.Clone(a), 0, 0, 0, 1, 3), b); err == nil {
		t.Fatal("older chunk with a truncated last entry merged without error")
	}
}

// BenchmarkMergeChunkBodies: a series' chunk of 240 periods merged with a
// fold's operand of the next 8, as compactions do.
func BenchmarkMergeChunkBodies(b *testing.B) {
	var older, newer []byte
	for p := range 248 {
		v := appendObsValue(nil, float64(p), []float64{9.99}, []bool{true}, "", false)
		if p < 240 {
			older = appendChunkEntry(older, biasPeriod(int32(p)), v)
		} else {
			newer = appendChunkEntry(newer, biasPeriod(int32(p)), v)
		}
	}
	var dst []byte
	b.SetBytes(int64(len(older) + len(newer)))
	for b.Loop() {
		var err error
		if dst, err = mergeChunkBodies(dst[:0], older, newer); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFoldDataset: one fold of 13 staged blocks of 10,000 series
// each out of 24,000 (one period per series per block, as period-major
// ingest of `bench ingest`'s data stages them) into a batch.
func BenchmarkFoldDataset(b *testing.B) {
	s := openMemStore(b, nil)
	const nBlocks, nSeries, perBlock = 13, 24000, 10000
	rng := rand.New(rand.NewPCG(1, 2))
	sids := make([]uint64, nSeries)
	for i := range sids {
		sids[i] = rng.Uint64()
	}
	blocks := make([]*stagedBlock, nBlocks)
	var bb blockBuilder
	for i := range blocks {
		rng.Shuffle(len(sids), func(x, y int) { sids[x], sids[y] = sids[y], sids[x] })
		bb.reset(false, perBlock)
		for _, sid := range slices.Sorted(slices.Values(sids[:perBlock])) {
			bb.add(sid, biasPeriod(int32(i)), appendObsValue(nil, float64(i), []float64{9.99}, []bool{true}, "", false))
		}
		blocks[i] = bb.finish(1, stagedKey(1, uint64(i+1), 0))
	}
	var fs foldScratch
	for b.Loop() {
		batch := s.db.NewBatch()
		if err := foldDataset(batch, blocks, &fs); err != nil {
			b.Fatal(err)
		}
		_ = batch.Close()
	}
}

// TestFoldBySeries: the fold's grouping orders every block's series by
// id, then block, for uniform ids and for ids that all share their top
// bits (one bucket: the fallback sort).
func TestFoldBySeries(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for name, id := range map[string]func() uint64{
		"uniform":  rng.Uint64,
		"top bits": func() uint64 { return rng.Uint64N(5000) },
	} {
		t.Run(name, func(t *testing.T) {
			pool := make([]uint64, 3000)
			for i := range pool {
				pool[i] = id()
			}
			var blocks []*stagedBlock
			var want []foldEnt
			for bi := range 9 {
				set := map[uint64]bool{}
				for range 1 + rng.IntN(1500) {
					set[pool[rng.IntN(len(pool))]] = true
				}
				sids := slices.Sorted(maps.Keys(set))
				blocks = append(blocks, &stagedBlock{sids: sids})
				for pos, sid := range sids {
					want = append(want, foldEnt{sid: sid, blk: int32(bi), pos: int32(pos)})
				}
			}
			slices.SortFunc(want, compareFoldEnts)
			var fs foldScratch
			for range 2 { // the second time on reused scratch
				if got := fs.bySeries(blocks); !slices.Equal(got, want) {
					t.Fatalf("bySeries: %d entries, differ from the sorted %d", len(got), len(want))
				}
			}
		})
	}
}
