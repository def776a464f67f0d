package tracking

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestObjectJourney follows one object through three transactions on two
// days, with other objects around it, and pages through it.
func TestObjectJourney(t *testing.T) {
	s := newMemStore(t, Config{})
	day2 := t0.Add(26 * time.Hour)
	tx1, tx2, tx3 := txid(t0, 1), txid(t0.Add(time.Minute), 2), txid(day2, 3)
	update(t, s, func(rec *Recorder) error {
		// Recorded out of time order on purpose: tx3 first.
		if err := rec.RecordObjects(tx3, "exports", day2, []ObjectEntry{
			{ObjectID: "o-1", Row: 0, Stage: StageValidate, Outcome: OutcomeAccepted},
			{ObjectID: "o-1", Row: 0, Stage: StageApply, Outcome: OutcomeAccepted},
			{ObjectID: "o-10", Row: 1, Stage: StageValidate, Outcome: OutcomeAccepted},
		}); err != nil {
			return err
		}
		if err := rec.RecordObjects(tx1, "exports", t0, []ObjectEntry{
			{ObjectID: "o-0", Row: 3, Stage: StageValidate, Outcome: OutcomeAccepted},
			{ObjectID: "o-1", Row: 4, Stage: StageValidate, Outcome: OutcomeRejected, Field: "qty", Reason: "below min 0"},
			{ObjectID: "o-2", Row: 5, Stage: StageValidate, Outcome: OutcomeAccepted},
			{ObjectID: "", Row: 6, Stage: StageValidate, Outcome: OutcomeAccepted}, // no object id: skipped
		}); err != nil {
			return err
		}
		return rec.RecordObjects(tx2, "exports", t0.Add(time.Minute), []ObjectEntry{
			{ObjectID: "o-1", Row: 0, Stage: StageValidate, Outcome: OutcomeAccepted},
		})
	})
	want := []ObjectEvent{
		{ObjectID: "o-1", Time: t0, TxID: tx1, Dataset: "exports", Row: 4, Stage: StageValidate, Outcome: OutcomeRejected, Field: "qty", Reason: "below min 0"},
		{ObjectID: "o-1", Time: t0.Add(time.Minute), TxID: tx2, Dataset: "exports", Row: 0, Stage: StageValidate, Outcome: OutcomeAccepted},
		{ObjectID: "o-1", Time: day2, TxID: tx3, Dataset: "exports", Row: 0, Stage: StageValidate, Outcome: OutcomeAccepted},
		{ObjectID: "o-1", Time: day2, TxID: tx3, Dataset: "exports", Row: 0, Stage: StageApply, Outcome: OutcomeAccepted},
	}
	got, next, err := s.Object(t.Context(), nil, "o-1", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) || next != "" {
		t.Errorf("journey:\ngot  %+v (next %q)\nwant %+v", got, next, want)
	}
	for _, limit := range []int{1, 2, 3} {
		t.Run(fmt.Sprint("limit=", limit), func(t *testing.T) {
			var all []ObjectEvent
			cursor := ""
			for range 10 {
				page, next, err := s.Object(t.Context(), nil, "o-1", limit, cursor)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > limit {
					t.Fatalf("page: got %d events, want <= %d", len(page), limit)
				}
				all = append(all, page...)
				if next == "" {
					break
				}
				cursor = next
			}
			if !slices.Equal(all, want) {
				t.Errorf("paged journey: got %+v, want %+v", all, want)
			}
		})
	}
	// With the transaction recorded first, the dataset comes from it.
	tx4 := txid(day2.Add(time.Hour), 4)
	update(t, s, func(rec *Recorder) error {
		if err := rec.RecordTransaction(Transaction{ID: tx4, Dataset: "orders", Source: SourceWebhook}); err != nil {
			return err
		}
		return rec.RecordObjects(tx4, "orders", day2.Add(time.Hour+1500*time.Microsecond), []ObjectEntry{
			{ObjectID: "o-7", Row: 1, Stage: StageApply, Outcome: OutcomeRejected, Field: "period", Reason: "bad date"},
		})
	})
	got, _, err = s.Object(t.Context(), nil, "o-7", 0, "")
	want7 := []ObjectEvent{{ObjectID: "o-7", Time: day2.Add(time.Hour + time.Millisecond), TxID: tx4, Dataset: "orders",
		Row: 1, Stage: StageApply, Outcome: OutcomeRejected, Field: "period", Reason: "bad date"}}
	if err != nil || !slices.Equal(got, want7) {
		t.Errorf("joined dataset: got %+v (%v), want %+v", got, err, want7)
	}
	if got, _, err := s.Object(t.Context(), nil, "o-9", 0, ""); err != nil || len(got) != 0 {
		t.Errorf("unknown object: got %v, %v; want none", got, err)
	}
	if _, _, err := s.Object(t.Context(), nil, "o-1", 0, "garbage"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad cursor: got %v, want ErrInvalid", err)
	}
}

// listFixture records 12 transactions over three days: dataset a/b
// alternating, sources http/file/sql in turn, every third one failed.
func listFixture(t *testing.T) (*Store, []Transaction) {
	s := newMemStore(t, Config{})
	var txs []Transaction
	update(t, s, func(rec *Recorder) error {
		for i := range 12 {
			at := t0.Add(time.Duration(i) * 6 * time.Hour)
			tx := Transaction{ID: txid(at, uint64(i)), Dataset: []string{"a", "b"}[i%2],
				Source: []Source{SourceHTTP, SourceFile, SourceSQL}[i%3], Accepted: 1, In: 1}
			if err := rec.RecordTransaction(tx); err != nil {
				return err
			}
			status := BlockSuccess
			if i%3 == 2 {
				status = BlockFailed
			}
			for _, st := range []Stage{StageIngress, StageValidate, StageCommit, StageApply} {
				if err := rec.RecordBlock(tx.ID, blk(st, status, at, time.Millisecond, 1, 1)); err != nil {
					return err
				}
			}
			txs = append(txs, tx)
		}
		return nil
	})
	return s, txs
}

func TestTransactionsListing(t *testing.T) {
	s, txs := listFixture(t)
	ids := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, txs[i].ID)
		}
		return out
	}
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{"all newest first", Filter{}, ids(11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)},
		{"dataset", Filter{Dataset: "a"}, ids(10, 8, 6, 4, 2, 0)},
		{"source", Filter{Source: SourceFile}, ids(10, 7, 4, 1)},
		{"status failed", Filter{Status: StatusFailed}, ids(11, 8, 5, 2)},
		{"status succeeded", Filter{Status: StatusSucceeded}, ids(10, 9, 7, 6, 4, 3, 1, 0)},
		{"dataset and status", Filter{Dataset: "b", Status: StatusFailed}, ids(11, 5)},
		{"dataset, source and status", Filter{Dataset: "a", Source: SourceSQL, Status: StatusFailed}, ids(8, 2)},
		{"from to", Filter{From: t0.Add(12 * time.Hour), To: t0.Add(36 * time.Hour)}, ids(5, 4, 3, 2)},
		{"from to with index", Filter{Dataset: "a", From: t0.Add(12 * time.Hour), To: t0.Add(36 * time.Hour)}, ids(4, 2)},
		{"to is exclusive", Filter{To: t0.Add(6 * time.Hour)}, ids(0)},
		{"nothing", Filter{Dataset: "zzz"}, nil},
	}
	for _, tc := range tests {
		for _, limit := range []int{0, 1, 2, 5} {
			t.Run(fmt.Sprintf("%s/limit=%d", tc.name, limit), func(t *testing.T) {
				f := tc.f
				f.Limit = limit
				var got []string
				for range 20 {
					page, next, err := s.Transactions(t.Context(), nil, f)
					if err != nil {
						t.Fatal(err)
					}
					if limit > 0 && len(page) > limit {
						t.Fatalf("page: got %d, want <= %d", len(page), limit)
					}
					if next != "" && len(page) == 0 {
						t.Fatal("got empty page with a next cursor")
					}
					for _, tx := range page {
						got = append(got, tx.ID)
					}
					if next == "" {
						break
					}
					f.Cursor = next
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("got %v, want %v", got, tc.want)
				}
			})
		}
	}
	if _, _, err := s.Transactions(t.Context(), nil, Filter{Status: "weird"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad status: got %v, want ErrInvalid", err)
	}
}

func TestRejectionsPaging(t *testing.T) {
	s := newMemStore(t, Config{})
	id := txid(t0, 1)
	var want []Rejection
	for row := range 7 {
		want = append(want, Rejection{Row: row * 2, ObjectID: fmt.Sprint("o", row), Field: "qty", Reason: "below min 0"})
		if row == 3 {
			want = append(want, Rejection{Row: row * 2, ObjectID: fmt.Sprint("o", row), Field: "region", Reason: "not allowed"})
		}
	}
	update(t, s, func(rec *Recorder) error { return rec.RecordRejections(id, want) })
	for _, limit := range []int{0, 1, 3, 8} {
		t.Run(fmt.Sprint("limit=", limit), func(t *testing.T) {
			var got []Rejection
			cursor := ""
			for range 20 {
				page, next, err := s.Rejections(t.Context(), nil, id, cursor, limit)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, page...)
				if next == "" {
					break
				}
				cursor = next
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

// TestJSONNames checks that the read models serialize with snake_case keys
// the HTTP layer can return as they are.
func TestJSONNames(t *testing.T) {
	v := TxView{Transaction: Transaction{ID: txid(t0, 1), IdempotencyKey: "k", ContentType: "text/csv"},
		Blocks: []Block{{Stage: StageApply, CPUTime: time.Millisecond}}, Progress: Progress{CurrentStage: StageApply}}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"transaction":`, `"idempotency_key":"k"`, `"content_type":"text/csv"`, `"rows_in":`,
		`"cpu_time_ns":1000000`, `"current_stage":"apply"`, `"stages_total":`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("got %s, want it to contain %s", b, key)
		}
	}
	b, err = json.Marshal(StatsResult{Buckets: []StatsBucket{{Groups: []StatsGroup{{P50MS: 1}}}}, Stages: []StageSummary{{Share: 0.5}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"p50_ms":1`, `"p99_ms":`, `"cpu_seconds":`, `"share":0.5`, `"bucket_seconds":`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("got %s, want it to contain %s", b, key)
		}
	}
	if _, _, err := newMemStore(t, Config{}).Transactions(t.Context(), nil, Filter{Cursor: "!!"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad cursor: got %v, want ErrInvalid", err)
	}
}
