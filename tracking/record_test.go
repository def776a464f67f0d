package tracking

import (
	"errors"
	"testing"
	"time"
)

type stageRec struct {
	st     Stage
	status BlockStatus
	err    string
}

var okPath = []stageRec{{StageIngress, BlockSuccess, ""}, {StageValidate, BlockSuccess, ""}, {StageCommit, BlockSuccess, ""}, {StageApply, BlockSuccess, ""}}

func TestStatusAndProgress(t *testing.T) {
	tests := []struct {
		name               string
		accepted, rejected int64
		blocks             []stageRec
		want               Status
		wantProgress       Progress
	}{
		{
			name: "no blocks", accepted: 3, want: StatusInProgress,
			wantProgress: Progress{StagesTotal: 6, CurrentStage: StageIngress},
		},
		{
			name: "interrupted after commit", accepted: 3, blocks: okPath[:3], want: StatusInProgress,
			wantProgress: Progress{StagesDone: 3, StagesTotal: 6, CurrentStage: StageApply, LastCompleted: StageCommit},
		},
		{
			name: "all required done", accepted: 3, blocks: okPath, want: StatusSucceeded,
			wantProgress: Progress{StagesDone: 4, StagesTotal: 6, CurrentStage: StageForecast, LastCompleted: StageApply},
		},
		{
			name: "rows rejected", accepted: 2, rejected: 1, blocks: okPath, want: StatusPartiallyFailed,
			wantProgress: Progress{StagesDone: 4, StagesTotal: 6, CurrentStage: StageForecast, LastCompleted: StageApply},
		},
		{
			name: "rows rejected but not applied yet", accepted: 2, rejected: 1, blocks: okPath[:2], want: StatusInProgress,
			wantProgress: Progress{StagesDone: 2, StagesTotal: 6, CurrentStage: StageCommit, LastCompleted: StageValidate},
		},
		{
			name: "all rows rejected", rejected: 3, blocks: okPath, want: StatusFailed,
			wantProgress: Progress{StagesDone: 4, StagesTotal: 6, CurrentStage: StageForecast, LastCompleted: StageApply},
		},
		{
			name: "failed block", accepted: 3, want: StatusFailed,
			blocks:       []stageRec{{StageIngress, BlockSuccess, ""}, {StageValidate, BlockFailed, "schema mismatch"}},
			wantProgress: Progress{StagesDone: 1, StagesTotal: 6, CurrentStage: StageValidate, LastCompleted: StageIngress, LastError: "schema mismatch"},
		},
		{
			name: "failed egress after success", accepted: 3, want: StatusFailed,
			blocks:       append(append([]stageRec{}, okPath...), stageRec{StageForecast, BlockSkipped, ""}, stageRec{StageEgress, BlockFailed, "webhook 503"}),
			wantProgress: Progress{StagesDone: 5, StagesTotal: 6, CurrentStage: StageEgress, LastCompleted: StageForecast, LastError: "webhook 503"},
		},
		{
			name: "everything done", accepted: 3, want: StatusSucceeded,
			blocks:       append(append([]stageRec{}, okPath...), stageRec{StageForecast, BlockSuccess, ""}, stageRec{StageEgress, BlockSkipped, ""}),
			wantProgress: Progress{StagesDone: 6, StagesTotal: 6, LastCompleted: StageEgress},
		},
		{
			name: "skipped counts as done", accepted: 3, want: StatusSucceeded,
			blocks:       []stageRec{{StageIngress, BlockSuccess, ""}, {StageValidate, BlockSkipped, ""}, {StageCommit, BlockSuccess, ""}, {StageApply, BlockSuccess, ""}},
			wantProgress: Progress{StagesDone: 4, StagesTotal: 6, CurrentStage: StageForecast, LastCompleted: StageApply},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newMemStore(t, Config{})
			id := txid(t0, 1)
			update(t, s, func(rec *Recorder) error {
				if err := rec.RecordTransaction(Transaction{ID: id, Dataset: "d", Source: SourceHTTP,
					In: tc.accepted + tc.rejected, Accepted: tc.accepted, Rejected: tc.rejected}); err != nil {
					return err
				}
				for i, b := range tc.blocks {
					bl := blk(b.st, b.status, t0.Add(time.Duration(i)*time.Second), time.Millisecond, 3, 3)
					bl.Error = b.err
					if err := rec.RecordBlock(id, bl); err != nil {
						return err
					}
				}
				return nil
			})
			v, err := s.Transaction(t.Context(), nil, id)
			if err != nil {
				t.Fatal(err)
			}
			if v.Transaction.Status != tc.want {
				t.Errorf("status: got %s, want %s", v.Transaction.Status, tc.want)
			}
			if v.Progress != tc.wantProgress {
				t.Errorf("progress: got %+v, want %+v", v.Progress, tc.wantProgress)
			}
			if got := len(v.Blocks); got != len(tc.blocks) {
				t.Errorf("blocks: got %d, want %d", got, len(tc.blocks))
			}
		})
	}
}

// TestInterruptedTransaction records ingress, validate and commit of a
// transaction in one batch (the node crashed before apply) and checks that
// it shows where it stopped, also through the status index.
func TestInterruptedTransaction(t *testing.T) {
	s := newMemStore(t, Config{})
	id := txid(t0, 9)
	update(t, s, func(rec *Recorder) error {
		if err := rec.RecordTransaction(Transaction{ID: id, Dataset: "exports", Source: SourceHTTP, In: 4, Accepted: 4}); err != nil {
			return err
		}
		for i, st := range []Stage{StageIngress, StageValidate, StageCommit} {
			if err := rec.RecordBlock(id, blk(st, BlockSuccess, t0.Add(time.Duration(i)*time.Millisecond), time.Millisecond, 4, 4)); err != nil {
				return err
			}
		}
		return nil
	})
	v, err := s.Transaction(t.Context(), nil, id)
	if err != nil {
		t.Fatal(err)
	}
	if v.Transaction.Status != StatusInProgress || v.Progress.CurrentStage != StageApply || v.Progress.LastCompleted != StageCommit {
		t.Errorf("got status %s current %s last %s, want in_progress, apply, commit",
			v.Transaction.Status, v.Progress.CurrentStage, v.Progress.LastCompleted)
	}
	if want := t0.Add(3 * time.Millisecond); !v.Transaction.Updated.Equal(want) {
		t.Errorf("updated: got %v, want %v", v.Transaction.Updated, want)
	}
	txs, _, err := s.Transactions(t.Context(), nil, Filter{Status: StatusInProgress})
	if err != nil || len(txs) != 1 || txs[0].ID != id {
		t.Errorf("in_progress listing: got %v, %v; want [%s]", txs, err, id)
	}
	// Apply arrives after the restart: the status index moves.
	update(t, s, func(rec *Recorder) error {
		return rec.RecordBlock(id, blk(StageApply, BlockSuccess, t0.Add(time.Second), time.Millisecond, 4, 4))
	})
	for _, tc := range []struct {
		status Status
		want   int
	}{{StatusInProgress, 0}, {StatusSucceeded, 1}} {
		txs, _, err := s.Transactions(t.Context(), nil, Filter{Status: tc.status})
		if err != nil || len(txs) != tc.want {
			t.Errorf("status %s: got %d transactions (%v), want %d", tc.status, len(txs), err, tc.want)
		}
	}
}

// TestBlockMerge records the same stage twice (a transaction split over two
// Raft entries) and a block before its transaction.
func TestBlockMerge(t *testing.T) {
	s := newMemStore(t, Config{})
	id := txid(t0, 3)
	a := blk(StageApply, BlockSuccess, t0, 10*time.Millisecond, 100, 100)
	a.CPUTime, a.Bytes = 2*time.Millisecond, 1000
	b := blk(StageApply, BlockSuccess, t0.Add(5*time.Millisecond), 20*time.Millisecond, 50, 40)
	b.CPUTime, b.Bytes, b.Node = 3*time.Millisecond, 500, "n2"
	update(t, s, func(rec *Recorder) error { return rec.RecordBlock(id, a) })
	update(t, s, func(rec *Recorder) error { return rec.RecordBlock(id, b) })
	v, err := s.Transaction(t.Context(), nil, id)
	if err != nil {
		t.Fatal(err)
	}
	want := Block{Stage: StageApply, Status: BlockSuccess, Started: t0, Finished: t0.Add(25 * time.Millisecond),
		RowsIn: 150, RowsOut: 140, Node: "n2", CPUTime: 5 * time.Millisecond, Bytes: 1500, Parts: 2}
	if len(v.Blocks) != 1 || v.Blocks[0] != want {
		t.Errorf("merged block: got %+v, want %+v", v.Blocks, want)
	}
	if v.Transaction.Dataset != "" || !v.Transaction.Created.Equal(t0) {
		t.Errorf("stub: got dataset %q created %v, want empty and %v", v.Transaction.Dataset, v.Transaction.Created, t0)
	}
	// The transaction record arrives later and keeps the block state.
	update(t, s, func(rec *Recorder) error {
		return rec.RecordTransaction(Transaction{ID: id, Dataset: "d", Source: SourceSQL, Accepted: 140, Rejected: 10})
	})
	v, err = s.Transaction(t.Context(), nil, id)
	if err != nil {
		t.Fatal(err)
	}
	if v.Progress.StagesDone != 1 || v.Transaction.Dataset != "d" || !v.Transaction.Updated.Equal(want.Finished) {
		t.Errorf("after RecordTransaction: got %+v / %+v", v.Transaction, v.Progress)
	}
	if _, err := s.Transaction(t.Context(), nil, txid(t0, 4)); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: got %v, want ErrNotFound", err)
	}
}
