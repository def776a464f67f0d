package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/demandflow/demandflow/stream"
)

// waitFor polls cond until it returns nil or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waitFor: %v", err)
		}
		<-tick.C
	}
}

func TestLocalGroupCommit(t *testing.T) {
	mem := checkedMem(t)
	s := openMemStore(t, nil)
	fsm := NewFSM(s, testLogger(t))
	l := NewLocal(fsm, LocalConfig{MaxBatch: 64, Logger: testLogger(t)})
	const n = 40
	var hold atomic.Bool
	// Hold the first ingest batch until every other entry is queued, so
	// grouping does not depend on timing.
	l.beforeApply = func(size int) {
		if !hold.CompareAndSwap(true, false) {
			return
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(l.reqs) != n-size {
			if time.Now().After(deadline) {
				t.Errorf("%d queued, want %d", len(l.reqs), n-size)
				return
			}
			time.Sleep(time.Millisecond) // polling, as waitFor
		}
	}
	l.Start()
	defer func() { _ = l.Shutdown(context.Background()) }()
	ctx := t.Context()
	sc := testSchema("d", stream.DuplicatesSum)
	if _, idx, err := l.Apply(ctx, mustCreate(t, sc)); err != nil || idx != 1 {
		t.Fatalf("create: index %d err %v", idx, err)
	}
	hold.Store(true)

	b := buildBatch(t, mem, &sc, []row{{"p", "r", 1, 1, math.NaN(), ""}}, 1, nil)
	defer b.Release()
	var wg sync.WaitGroup
	indexes := make([]uint64, n)
	for i := range n {
		entry := mustIngest(t, meta("d", fmt.Sprintf("tx%d", i), ""), &sc, b, 0)[0]
		wg.Go(func() {
			resp, idx, err := l.Apply(ctx, entry)
			if err != nil {
				t.Errorf("apply %d: %v", i, err)
				return
			}
			if res := resp.(*IngestResult); res.Accepted != 1 || res.Duplicate {
				t.Errorf("apply %d: got %+v", i, res)
			}
			indexes[i] = idx
		})
	}
	wg.Wait()
	st := l.Stats()
	// 1 batch for the create, then the held batch and one with the rest
	// (or all n at once if they were queued before the loop looked).
	if st.Entries != n+1 || st.Batches > 3 {
		t.Errorf("stats: got %+v, want %d entries in at most 3 batches", st, n+1)
	}
	seen := map[uint64]bool{}
	for _, idx := range indexes {
		if idx < 2 || idx > n+1 || seen[idx] {
			t.Errorf("index %d: duplicate or out of range", idx)
		}
		seen[idx] = true
	}
	if got := s.AppliedIndex(); got != n+1 {
		t.Errorf("applied: got %d, want %d", got, n+1)
	}
	obs, err := s.Observations(ctx, "d", stream.SeriesID("d", []string{"p", "r"}), 1, 1)
	if err != nil || len(obs) != 1 || obs[0].Value != n {
		t.Errorf("sum of %d ingests: got %+v %v", n, obs, err)
	}
	// A business rejection is returned as err, with its index.
	if _, idx, err := l.Apply(ctx, mustCreate(t, sc)); !errors.Is(err, ErrDatasetExists) || idx != n+2 {
		t.Errorf("duplicate create: got index %d err %v, want %d ErrDatasetExists", idx, err, n+2)
	}
	if err := l.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Apply(ctx, mustCreate(t, sc)); !errors.Is(err, ErrShutdown) {
		t.Errorf("after shutdown: got %v, want ErrShutdown", err)
	}
}

func TestLocalApplyContextCanceled(t *testing.T) {
	s := openMemStore(t, nil)
	l := NewLocal(NewFSM(s, nil), LocalConfig{MaxBatch: 1})
	release, entered := make(chan struct{}), make(chan struct{})
	l.beforeApply = func(int) { close(entered); <-release }
	l.Start()
	defer func() { _ = l.Shutdown(context.Background()) }()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, _, err := l.Apply(ctx, mustCreate(t, testSchema("d", "")))
		done <- err
	}()
	<-entered // the loop holds the entry
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	close(release)
	// The entry is still applied.
	waitFor(t, 10*time.Second, func() error {
		if _, ok := s.Dataset("d"); !ok {
			return errors.New("not applied")
		}
		return nil
	})
}

func TestClusterReopen(t *testing.T) {
	for _, standalone := range []bool{true, false} {
		t.Run(fmt.Sprintf("standalone=%v", standalone), func(t *testing.T) { testClusterReopen(t, standalone) })
	}
}

// testClusterReopen writes through the committer (Local or single-node
// Raft), closes, reopens and checks state and the next index.
func testClusterReopen(t *testing.T, standalone bool) {
	mem := checkedMem(t)
	dir := t.TempDir()
	ctx := t.Context()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.NodeName, cfg.Logger, cfg.Standalone = dir, "n1", testLogger(t), standalone
	c, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sc := testSchema("d", "")
	if _, _, err := c.Apply(ctx, mustCreate(t, sc)); err != nil {
		t.Fatal(err)
	}
	rows := make([]row, 100)
	for i := range rows {
		rows[i] = row{fmt.Sprint("p", i%10), "r", int32(i / 10), float64(i), 1, ""}
	}
	b := buildBatch(t, mem, &sc, rows, 30, nil)
	defer b.Release()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for _, e := range mustIngest(t, meta("d", fmt.Sprint("tx", i), ""), &sc, b, 2048) {
				if _, _, err := c.Apply(ctx, e); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	idx := c.Store().AppliedIndex()
	if c.NodeName() != "n1" {
		t.Errorf("node name: got %q", c.NodeName())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, _, err := c.Apply(ctx, mustCreate(t, sc)); !errors.Is(err, ErrShutdown) {
		t.Errorf("apply after close: got %v, want ErrShutdown", err)
	}

	c, err = Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st := c.Store()
	// Under Raft the new term's first entries may apply right away.
	if got := st.AppliedIndex(); got != idx && (standalone || got < idx) {
		t.Fatalf("applied after reopen: got %d, want %d", got, idx)
	}
	if ds := st.Datasets(); len(ds) != 1 || ds[0].Series != 10 || ds[0].RowsAccepted != 800 || ds[0].Transactions != 8 {
		t.Fatalf("datasets after reopen: %+v", ds)
	}
	obs, err := st.Observations(ctx, "d", stream.SeriesID("d", []string{"p3", "r"}), math.MinInt32, math.MaxInt32)
	if err != nil || len(obs) != 10 || obs[9].Value != 93 {
		t.Fatalf("observations after reopen: %+v %v", obs, err)
	}
	_, index, err := c.Apply(ctx, mustCreate(t, testSchema("e", "")))
	if err != nil || index < idx+1 || (standalone && index != idx+1) {
		t.Fatalf("apply after reopen: index %d err %v, want %d (or later under raft)", index, err, idx+1)
	}
}
