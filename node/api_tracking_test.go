package node

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/demandflow/demandflow/stream"
	"github.com/demandflow/demandflow/stream/streamtest"
	"github.com/demandflow/demandflow/tracking"
)

func getJSON[T any](t *testing.T, u string, want int) T {
	t.Helper()
	r := do(t, "GET", u, nil, nil)
	if r.status != want {
		t.Fatalf("GET %s: got %d %s, want %d", u, r.status, r.body, want)
	}
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("GET %s: %v in %s", u, err, r.body)
	}
	return v
}

// TestTrackingEndToEnd ingests through HTTP and follows the transaction
// and its objects through every tracking endpoint: a rejected row is
// findable by object id with its reason.
func TestTrackingEndToEnd(t *testing.T) {
	n := startNode(t, nil)
	createShop(t, n)
	body := streamtest.Body(stream.CSV, shopHeader, [][]string{
		{"2024-01", "A", "EU-DE", "5", "9.5", "ord-1"},
		{"2024-02", "A", "EU-DE", "-1", "9.5", "ord-2"}, // below min 0
		{"2024-01", "B", "EU-FR", "7", "", "ord-3"},
	})
	ing := ingestBody(t, n, "shop", stream.CSV, body, nil)
	if ing.status != http.StatusOK {
		t.Fatalf("ingest: got %d %s", ing.status, ing.body)
	}
	var resp IngestResponse
	if err := json.Unmarshal(ing.body, &resp); err != nil {
		t.Fatal(err)
	}
	base := n.URL() + "/v1/tracking"

	tx := getJSON[TxTrackingResponse](t, base+"/transactions/"+resp.TxID, http.StatusOK)
	if tx.Node != "t1" || tx.Index == 0 {
		t.Errorf("tx: node %q index %d, want t1 and an index", tx.Node, tx.Index)
	}
	if tx.Transaction.Status != tracking.StatusPartiallyFailed || tx.Transaction.Accepted != 2 || tx.Transaction.Rejected != 1 ||
		tx.Transaction.Source != tracking.SourceHTTP || tx.Transaction.Node != "t1" || tx.Transaction.Bytes == 0 {
		t.Errorf("tx: got %+v, want partially_failed, 2 accepted, 1 rejected, http, t1, bytes", tx.Transaction)
	}
	var stages []string
	for _, b := range tx.Blocks {
		stages = append(stages, string(b.Stage))
		if b.Finished.Before(b.Started) {
			t.Errorf("block %s finished before it started: %+v", b.Stage, b)
		}
	}
	if strings.Join(stages, ",") != "ingress,validate,commit,apply" {
		t.Errorf("blocks: got %v, want ingress..apply", stages)
	}
	if tx.Progress.LastCompleted != tracking.StageApply || len(tx.Rejections) != 1 || tx.Rejections[0].Row != 2 ||
		tx.Rejections[0].Field != "qty" || tx.Rejections[0].ObjectID != "ord-2" {
		t.Errorf("progress %+v rejections %+v, want apply done and row 2 (qty, ord-2)", tx.Progress, tx.Rejections)
	}

	obj := getJSON[ObjectTrackingResponse](t, base+"/objects/ord-2", http.StatusOK)
	if len(obj.Events) != 1 || obj.Events[0].Outcome != tracking.OutcomeRejected || obj.Events[0].Field != "qty" ||
		obj.Events[0].Reason == "" || obj.Events[0].TxID != resp.TxID || obj.Events[0].Dataset != "shop" {
		t.Errorf("rejected object: got %+v, want one rejected event with field qty and a reason", obj.Events)
	}
	obj = getJSON[ObjectTrackingResponse](t, base+"/objects/ord-3", http.StatusOK)
	if len(obj.Events) != 1 || obj.Events[0].Outcome != tracking.OutcomeAccepted || obj.Events[0].Stage != tracking.StageApply {
		t.Errorf("accepted object: got %+v, want accepted at apply", obj.Events)
	}

	list := getJSON[TxListResponse](t, base+"/transactions?dataset=shop&from=-1h&limit=10", http.StatusOK)
	if len(list.Transactions) != 1 || list.Transactions[0].ID != resp.TxID || list.Node != "t1" {
		t.Errorf("list: got %+v", list)
	}
	list = getJSON[TxListResponse](t, base+"/transactions?status=succeeded", http.StatusOK)
	if len(list.Transactions) != 0 {
		t.Errorf("list succeeded: got %d, want 0", len(list.Transactions))
	}

	stats := getJSON[StatsResponse](t, base+"/stats?from=-1h&to=now&bucket=1h&by=stage", http.StatusOK)
	if stats.StatsResult == nil || len(stats.Buckets) == 0 || len(stats.Stages) != 4 || stats.Bottleneck == "" || stats.Node != "t1" {
		t.Errorf("stats: got %+v", stats)
	}
	from := url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	stats = getJSON[StatsResponse](t, base+"/stats?from="+from+"&by=node", http.StatusOK)
	if len(stats.Buckets) == 0 {
		t.Errorf("stats by node with RFC 3339 from: no buckets")
	}
}

func TestTrackingBadRequests(t *testing.T) {
	n := startNode(t, nil)
	base := n.URL() + "/v1/tracking"
	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{"/transactions/not-a-ulid", 400, "tx_id"},
		{"/transactions/01JN8S7QG0DBK7GFTFQQMHPVNR", 404, "01JN8S7QG0DBK7GFTFQQMHPVNR"},
		{"/transactions/01JN8S7QG0DBK7GFTFQQMHPVNR?limit=x", 400, "limit"},
		{"/transactions?limit=-1", 400, "limit"},
		{"/transactions?status=done", 400, "status"},
		{"/transactions?from=yesterday", 400, "from"},
		{"/transactions?to=2025-13-01", 400, "to"},
		{"/transactions?from=-1h&to=-2h", 400, "to"},
		{"/transactions?cursor=%21%21", 400, "cursor"},
		{"/objects/nobody", 404, "nobody"},
		{"/objects/x?cursor=abc", 400, "cursor"},
		{"/stats?bucket=7s", 400, "bucket"},
		{"/stats?by=region", 400, "by"},
		{"/stats?from=soon", 400, "from"},
		{"/stats?from=-1h&to=-2h", 400, "to"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := do(t, "GET", base+tc.path, nil, nil)
			if r.status != tc.status || !strings.Contains(string(r.body), tc.want) {
				t.Errorf("got %d %s, want %d naming %q", r.status, r.body, tc.status, tc.want)
			}
		})
	}
}
