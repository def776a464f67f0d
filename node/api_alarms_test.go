package node

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/demandflow/demandflow/cluster"
)

func TestAlarmsHandler(t *testing.T) {
	n := startNode(t, nil)
	get := func() alarmsView {
		t.Helper()
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/v1/alarms", nil)
		if err := n.alarms(rec, req); err != nil {
			t.Fatalf("alarms: %v", err)
		}
		if rec.Code != http.StatusOK {
			t.Fatalf("status: got %d, want 200", rec.Code)
		}
		var v alarmsView
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("body %q: %v", rec.Body.Bytes(), err)
		}
		return v
	}
	v := get()
	if v.Active == nil || v.History == nil || v.Local == nil || len(v.Active)+len(v.History)+len(v.Local) != 0 || v.Node != n.Name() {
		t.Fatalf("fresh node: got %+v, want empty lists and node %s", v, n.Name())
	}

	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, kind := range []string{cluster.AlarmNodeDown, cluster.AlarmDiskSpace} {
		e, err := cluster.EncodeAlarmRaise(cluster.Alarm{Kind: kind, Subject: "n2", Severity: cluster.SeverityCritical,
			Message: "test", RaisedAt: at, RaisedBy: n.Name()})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := n.cl.Apply(t.Context(), e); err != nil {
			t.Fatalf("apply raise: %v", err)
		}
	}
	e, err := cluster.EncodeAlarmClear("disk_space:n2", at.Add(time.Minute), n.Name(), "freed")
	if err != nil {
		t.Fatal(err)
	}
	_, index, err := n.cl.Apply(t.Context(), e)
	if err != nil {
		t.Fatalf("apply clear: %v", err)
	}
	v = get()
	if len(v.Active) != 1 || v.Active[0].ID != "node_down:n2" || !v.Active[0].RaisedAt.Equal(at) {
		t.Errorf("active: got %+v, want node_down:n2", v.Active)
	}
	if len(v.History) != 1 || v.History[0].ID != "disk_space:n2" || v.History[0].ClearReason != "freed" || v.History[0].ClearedAt == nil {
		t.Errorf("history: got %+v, want disk_space:n2 cleared (freed)", v.History)
	}
	if v.Index < index {
		t.Errorf("index: got %d, want >= %d", v.Index, index)
	}
}
