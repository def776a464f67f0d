package node

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/klauspost/compress/zstd"

	"github.com/demandflow/demandflow/stream"
	"github.com/demandflow/demandflow/stream/streamtest"
)

// startNode runs a node on a loopback port chosen by the OS with its data in
// a temp dir, and stops it at the end of the test.
func startNode(t *testing.T, mod func(*Config)) *Node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.RaftAddr = "127.0.0.1:0"
	cfg.GossipAddr = "127.0.0.1:0"
	cfg.NodeName = "t1"
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	if mod != nil {
		mod(&cfg)
	}
	n, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := n.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	waitReady(t, n)
	return n
}

// waitReady polls /readyz until the node has elected itself (single-node
// Raft) and caught up.
func waitReady(t testing.TB, n *Node) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if ok, _ := n.cl.Ready(); ok && n.cl.IsLeader() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("node %s not ready after 15s", n.Name())
}

type result struct {
	status int
	body   []byte
	header http.Header
}

func (r result) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not JSON (status %d): %q", r.status, r.body)
	}
	return m
}

func do(t *testing.T, method, url string, hdr map[string]string, body []byte) result {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{status: resp.StatusCode, body: b, header: resp.Header}
}

const shopSchema = `{"name":"shop","frequency":"month","period":"period",
 "dimensions":["product","region"],"measure":"qty","covariates":["price"],"object_id":"object_id",
 "rules":{"qty":{"required":true,"min":0},"region":{"allowed":["EU-DE","EU-FR"]}},"duplicates":"last"}`

var shopHeader = []string{"period", "product", "region", "qty", "price", "object_id"}

func createShop(t *testing.T, n *Node) {
	t.Helper()
	r := do(t, "POST", n.URL()+"/v1/datasets", map[string]string{"Content-Type": "application/json"}, []byte(shopSchema))
	if r.status != http.StatusCreated {
		t.Fatalf("create dataset: got %d %s, want 201", r.status, r.body)
	}
}

func ingestBody(t *testing.T, n *Node, dataset string, f stream.Format, body []byte, hdr map[string]string) result {
	t.Helper()
	h := map[string]string{"Content-Type": f.ContentType()}
	for k, v := range hdr {
		h[k] = v
	}
	return do(t, "POST", n.URL()+"/v1/datasets/"+dataset+"/records", h, body)
}

func TestDatasetLifecycle(t *testing.T) {
	n := startNode(t, nil)
	createShop(t, n)
	r := do(t, "POST", n.URL()+"/v1/datasets", map[string]string{"Content-Type": "application/json"}, []byte(shopSchema))
	if r.status != http.StatusConflict {
		t.Errorf("create twice: got %d, want 409", r.status)
	}
	r = do(t, "GET", n.URL()+"/v1/datasets", nil, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"name":"shop"`) {
		t.Errorf("list: got %d %s", r.status, r.body)
	}
	r = do(t, "GET", n.URL()+"/v1/datasets/shop", nil, nil)
	ds := r.json(t)["dataset"].(map[string]any)
	if ds["frequency"] != "month" || ds["duplicates"] != "last" {
		t.Errorf("get: got %v", ds)
	}
	if r := do(t, "GET", n.URL()+"/v1/datasets/nope", nil, nil); r.status != 404 {
		t.Errorf("get unknown: got %d, want 404", r.status)
	}
	if r := do(t, "DELETE", n.URL()+"/v1/datasets/shop", nil, nil); r.status != 200 {
		t.Errorf("delete: got %d %s, want 200", r.status, r.body)
	}
	if r := do(t, "DELETE", n.URL()+"/v1/datasets/shop", nil, nil); r.status != 404 {
		t.Errorf("delete again: got %d, want 404", r.status)
	}
}

func TestCreateDatasetErrors(t *testing.T) {
	n := startNode(t, nil)
	cases := []struct {
		name, body, want string
	}{
		{"not json", `{"name":`, "invalid dataset schema JSON"},
		{"unknown key", `{"name":"a","frequency":"month","period":"p","measure":"q","bogus":1}`, "bogus"},
		{"bad frequency", `{"name":"a","frequency":"hourly","period":"p","measure":"q"}`, "frequency"},
		{"missing measure", `{"name":"a","frequency":"month","period":"p"}`, "measure"},
		{"rule on unknown column", `{"name":"a","frequency":"month","period":"p","measure":"q","rules":{"x":{"required":true}}}`, "rules.x"},
		{"bad name", `{"name":"a b","frequency":"month","period":"p","measure":"q"}`, "name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "POST", n.URL()+"/v1/datasets", map[string]string{"Content-Type": "application/json"}, []byte(tc.body))
			if r.status != 400 {
				t.Fatalf("got %d %s, want 400", r.status, r.body)
			}
			if msg, _ := r.json(t)["error"].(string); !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not name %q", msg, tc.want)
			}
		})
	}
}

var shopRows = [][]string{
	{"2024-01", "A", "EU-DE", "3", "9.5", "o-1"},
	{"2024-02", "A", "EU-DE", "4", "9.5", "o-2"},
	{"2024-03", "A", "EU-XX", "4", "9.5", "o-3"}, // region not allowed
	{"2024-03", "B", "EU-FR", "-1", "", "o-4"},   // below min
	{"2024-04-17", "B", "EU-FR", "7", "", "o-5"}, // day aligned to month
}

func TestIngestEveryFormat(t *testing.T) {
	for _, f := range []stream.Format{stream.CSV, stream.NDJSON, stream.JSON, stream.XML, stream.Arrow} {
		t.Run(string(f), func(t *testing.T) {
			n := startNode(t, nil)
			createShop(t, n)
			r := ingestBody(t, n, "shop", f, streamtest.Body(f, shopHeader, shopRows), nil)
			if r.status != 200 {
				t.Fatalf("ingest: got %d %s, want 200", r.status, r.body)
			}
			var resp IngestResponse
			if err := json.Unmarshal(r.body, &resp); err != nil {
				t.Fatal(err)
			}
			if resp.Accepted != 3 || resp.Rejected != 2 || len(resp.Errors) != 2 {
				t.Fatalf("got accepted=%d rejected=%d errors=%v, want 3, 2, 2 errors", resp.Accepted, resp.Rejected, resp.Errors)
			}
			if e := resp.Errors[0]; e.Row != 3 || e.Field != "region" || e.ObjectID != "o-3" {
				t.Errorf("first error: got %+v, want row 3 field region object o-3", e)
			}
			if e := resp.Errors[1]; e.Row != 4 || e.Field != "qty" || !strings.Contains(e.Reason, "min") {
				t.Errorf("second error: got %+v, want row 4 field qty below min", e)
			}
			if resp.TxID == "" || resp.Node != "t1" || resp.Index == 0 {
				t.Errorf("got tx_id=%q node=%q index=%d", resp.TxID, resp.Node, resp.Index)
			}
			checkObservations(t, n, "shop", map[string]string{"product": "A", "region": "EU-DE"}, []string{"2024-01", "2024-02"}, []float64{3, 4})
			checkObservations(t, n, "shop", map[string]string{"product": "B", "region": "EU-FR"}, []string{"2024-04"}, []float64{7})
		})
	}
}

// checkObservations finds the one series matching filter and compares its
// observations.
func checkObservations(t *testing.T, n *Node, ds string, filter map[string]string, periods []string, values []float64) {
	t.Helper()
	q := []string{}
	for k, v := range filter {
		q = append(q, k+"="+v)
	}
	r := do(t, "GET", n.URL()+"/v1/datasets/"+ds+"/series?"+strings.Join(q, "&"), nil, nil)
	if r.status != 200 {
		t.Fatalf("series: got %d %s", r.status, r.body)
	}
	list := r.json(t)["series"].([]any)
	if len(list) != 1 {
		t.Fatalf("series %v: got %d series, want 1: %s", filter, len(list), r.body)
	}
	id := list[0].(map[string]any)["series_id"].(string)
	r = do(t, "GET", n.URL()+"/v1/datasets/"+ds+"/series/"+id+"/observations", nil, nil)
	if r.status != 200 {
		t.Fatalf("observations: got %d %s", r.status, r.body)
	}
	obs := r.json(t)["observations"].([]any)
	if len(obs) != len(periods) {
		t.Fatalf("observations of %v: got %d, want %d: %s", filter, len(obs), len(periods), r.body)
	}
	for i, o := range obs {
		m := o.(map[string]any)
		if m["period"] != periods[i] || m["value"] != values[i] {
			t.Errorf("observation %d: got %v %v, want %s %g", i, m["period"], m["value"], periods[i], values[i])
		}
	}
}

func TestIngestErrors(t *testing.T) {
	n := startNode(t, func(c *Config) { c.MaxBodyBytes = 4096 })
	createShop(t, n)
	big := streamtest.Body(stream.CSV, shopHeader, repeatRows(shopRows[:1], 200))
	cases := []struct {
		name    string
		dataset string
		hdr     map[string]string
		body    []byte
		status  int
		want    string
	}{
		{"unknown dataset", "nope", map[string]string{"Content-Type": "text/csv"}, []byte("a\n1\n"), 404, "nope"},
		{"unsupported content type", "shop", map[string]string{"Content-Type": "application/pdf"}, []byte("x"), 415, "application/pdf"},
		{"missing content type", "shop", map[string]string{"Content-Type": ""}, []byte("x"), 415, "Content-Type"},
		{"unsupported encoding", "shop", map[string]string{"Content-Type": "text/csv", "Content-Encoding": "br"}, []byte("x"), 415, "br"},
		{"too large", "shop", map[string]string{"Content-Type": "text/csv"}, big, 413, "max_body_bytes"},
		{"malformed json", "shop", map[string]string{"Content-Type": "application/json"}, []byte(`[{"period":"2024-01",}]`), 400, "line 1"},
		{"malformed ndjson", "shop", map[string]string{"Content-Type": "application/x-ndjson"},
			[]byte("{\"period\":\"2024-01\",\"product\":\"A\",\"region\":\"EU-DE\",\"qty\":1}\n{\"period\":\n"), 400, "line 2"},
		{"csv missing column", "shop", map[string]string{"Content-Type": "text/csv"}, []byte("period,product,qty\n2024-01,A,1\n"), 400, "region"},
		{"malformed xml", "shop", map[string]string{"Content-Type": "application/xml"}, []byte("<records><record><period>2024-01</record></records>"), 400, "line 1"},
		{"malformed arrow", "shop", map[string]string{"Content-Type": "application/vnd.apache.arrow.stream"}, []byte("not arrow at all"), 400, "arrow"},
		{"bad idempotency key", "shop", map[string]string{"Content-Type": "text/csv", "Idempotency-Key": strings.Repeat("k", 300)}, []byte("a\n"), 400, "Idempotency-Key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), "POST", n.URL()+"/v1/datasets/"+tc.dataset+"/records", bytes.NewReader(tc.body))
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			if tc.hdr["Content-Type"] == "" {
				req.Header.Del("Content-Type")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("got %d %s, want %d", resp.StatusCode, b, tc.status)
			}
			var e errorResponse
			if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
				t.Fatalf("error body is not {\"error\":...}: %q", b)
			}
			if !strings.Contains(e.Error, tc.want) {
				t.Errorf("error %q does not mention %q", e.Error, tc.want)
			}
		})
	}
	// Nothing from the refused requests was stored.
	r := do(t, "GET", n.URL()+"/v1/datasets/shop/series", nil, nil)
	if got := len(r.json(t)["series"].([]any)); got != 0 {
		t.Errorf("series after refused requests: got %d, want 0", got)
	}
}

func repeatRows(rows [][]string, k int) [][]string {
	var out [][]string
	for i := 0; i < k; i++ {
		out = append(out, rows...)
	}
	return out
}

func TestIngestCompressed(t *testing.T) {
	n := startNode(t, nil)
	createShop(t, n)
	plain := streamtest.Body(stream.NDJSON, shopHeader, shopRows)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(plain)
	_ = zw.Close()
	enc, _ := zstd.NewWriter(nil)
	zs := enc.EncodeAll(plain, nil)
	for name, body := range map[string][]byte{"gzip": gz.Bytes(), "zstd": zs} {
		r := ingestBody(t, n, "shop", stream.NDJSON, body, map[string]string{"Content-Encoding": name})
		if r.status != 200 {
			t.Fatalf("%s: got %d %s", name, r.status, r.body)
		}
		if got := r.json(t)["accepted"]; got != 3.0 {
			t.Errorf("%s: accepted %v, want 3", name, got)
		}
	}
	// Decoders are recycled: a broken body gets a 4xx, and the requests
	// after it still decode.
	for i, body := range [][]byte{zs[:len(zs)/2], []byte("not zstd"), zs, zs} {
		r := ingestBody(t, n, "shop", stream.NDJSON, body, map[string]string{"Content-Encoding": "zstd"})
		if i < 2 {
			if r.status != 400 || !strings.Contains(string(r.body), "invalid zstd body") {
				t.Errorf("broken zstd body %d: got %d %s, want 400 invalid zstd body", i, r.status, r.body)
			}
			continue
		}
		if r.status != 200 || r.json(t)["accepted"] != 3.0 {
			t.Errorf("zstd request %d after broken ones: got %d %s", i, r.status, r.body)
		}
	}
	if r := ingestBody(t, n, "shop", stream.NDJSON, gz.Bytes()[:gz.Len()-12], map[string]string{"Content-Encoding": "gzip"}); r.status != 400 ||
		!strings.Contains(string(r.body), "invalid gzip body") {
		t.Errorf("truncated gzip body: got %d %s, want 400 invalid gzip body", r.status, r.body)
	}
	// A decompression bomb is refused by the limit on decompressed size.
	n2 := startNode(t, func(c *Config) { c.MaxBodyBytes = 64 << 10 })
	createShop(t, n2)
	huge := bytes.Repeat([]byte("{\"period\":\"2024-01\",\"product\":\"A\",\"region\":\"EU-DE\",\"qty\":1}\n"), 20000)
	r := ingestBody(t, n2, "shop", stream.NDJSON, enc.EncodeAll(huge, nil), map[string]string{"Content-Encoding": "zstd"})
	if r.status != 413 {
		t.Errorf("bomb: got %d %s, want 413", r.status, r.body)
	}
}

func TestIdempotency(t *testing.T) {
	n := startNode(t, nil)
	createShop(t, n)
	body := streamtest.Body(stream.CSV, shopHeader, shopRows)
	hdr := map[string]string{"Idempotency-Key": "k-1"}
	first := ingestBody(t, n, "shop", stream.CSV, body, hdr).json(t)
	second := ingestBody(t, n, "shop", stream.CSV, body, hdr)
	if second.status != 200 {
		t.Fatalf("retry: got %d %s", second.status, second.body)
	}
	s := second.json(t)
	if s["tx_id"] != first["tx_id"] || s["accepted"] != first["accepted"] || s["rejected"] != first["rejected"] || s["replayed"] != true {
		t.Errorf("retry: got %v, want first result %v replayed", s, first)
	}
	// Under the sum policy a duplicate would show; use a sum dataset.
	sum := strings.Replace(strings.Replace(shopSchema, `"last"`, `"sum"`, 1), `"shop"`, `"shopsum"`, 1)
	if r := do(t, "POST", n.URL()+"/v1/datasets", map[string]string{"Content-Type": "application/json"}, []byte(sum)); r.status != 201 {
		t.Fatalf("create sum dataset: %d %s", r.status, r.body)
	}
	for i := 0; i < 3; i++ {
		ingestBody(t, n, "shopsum", stream.CSV, body, map[string]string{"Idempotency-Key": "same"})
	}
	ingestBody(t, n, "shopsum", stream.CSV, body, map[string]string{"Idempotency-Key": "other"})
	// Two distinct transactions: values doubled once, not four times.
	checkObservations(t, n, "shopsum", map[string]string{"product": "A", "region": "EU-DE"}, []string{"2024-01", "2024-02"}, []float64{6, 8})
}

func TestObservationFormats(t *testing.T) {
	n := startNode(t, nil)
	createShop(t, n)
	ingestBody(t, n, "shop", stream.CSV, streamtest.Body(stream.CSV, shopHeader, shopRows), nil)
	r := do(t, "GET", n.URL()+"/v1/datasets/shop/series?product=A", nil, nil)
	id := r.json(t)["series"].([]any)[0].(map[string]any)["series_id"].(string)
	base := n.URL() + "/v1/datasets/shop/series/" + id + "/observations"

	r = do(t, "GET", base+"?from=2024-02&to=2024-12", map[string]string{"Accept": "text/csv"}, nil)
	want := "period,qty,price,object_id\n2024-02,4,9.5,o-2\n"
	if r.status != 200 || string(r.body) != want {
		t.Errorf("csv: got %d %q, want %q", r.status, r.body, want)
	}
	r = do(t, "GET", base, map[string]string{"Accept": "application/vnd.apache.arrow.stream"}, nil)
	rd, err := ipc.NewReader(bytes.NewReader(r.body), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		t.Fatalf("arrow: %v", err)
	}
	rows := 0
	for rd.Next() {
		rows += int(rd.RecordBatch().NumRows())
	}
	rd.Release()
	if rows != 2 {
		t.Errorf("arrow: got %d rows, want 2", rows)
	}
	for _, tc := range []struct {
		url    string
		hdr    map[string]string
		status int
	}{
		{base + "?from=2024-13", nil, 400},
		{n.URL() + "/v1/datasets/shop/series/zz/observations", nil, 400},
		{n.URL() + "/v1/datasets/shop/series/0000000000000001/observations", nil, 404},
		{base, map[string]string{"Accept": "image/png"}, 406},
		{n.URL() + "/v1/datasets/shop/series?colour=red", nil, 400},
		{n.URL() + "/v1/datasets/shop/series?limit=0", nil, 400},
	} {
		if r := do(t, "GET", tc.url, tc.hdr, nil); r.status != tc.status {
			t.Errorf("GET %s: got %d %s, want %d", tc.url, r.status, r.body, tc.status)
		}
	}
}

func TestSeriesPaging(t *testing.T) {
	n := startNode(t, nil)
	createShop(t, n)
	var rows [][]string
	for p := 0; p < 25; p++ {
		rows = append(rows, []string{"2024-01", fmt.Sprintf("P%02d", p), "EU-DE", "1", "1", ""})
	}
	ingestBody(t, n, "shop", stream.CSV, streamtest.Body(stream.CSV, shopHeader, rows), nil)
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		r := do(t, "GET", n.URL()+"/v1/datasets/shop/series?limit=10"+cursor, nil, nil).json(t)
		for _, s := range r["series"].([]any) {
			seen[s.(map[string]any)["series_id"].(string)] = true
		}
		next, ok := r["next_cursor"].(string)
		if !ok {
			break
		}
		cursor = "&cursor=" + next
	}
	if len(seen) != 25 {
		t.Errorf("paged series: got %d distinct, want 25", len(seen))
	}
}

func TestAddrsFile(t *testing.T) {
	n := startNode(t, nil)
	b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, "addrs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var a Addrs
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	if a.HTTP != n.httpLn.Addr().String() || strings.HasSuffix(a.HTTP, ":0") {
		t.Errorf("addrs.json http: got %q, want the bound %q", a.HTTP, n.httpLn.Addr())
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/v1/status"} {
		if r := do(t, "GET", n.URL()+p, nil, nil); r.status != 200 {
			t.Errorf("GET %s: got %d", p, r.status)
		}
	}
	r := do(t, "GET", n.URL()+"/metrics", nil, nil)
	for _, m := range []string{"demandflow_tracking_write_errors_total 0", "demandflow_tracking_run_ingest_fallbacks_total 0"} {
		if !strings.Contains(string(r.body), m+"\n") {
			t.Errorf("GET /metrics: no line %q", m)
		}
	}
}

// TestWriteMetrics: /metrics times the Raft log's writes, the FSM's
// applies by command and its commits, so an operator can see where an ack
// waits after validation.
func TestWriteMetrics(t *testing.T) {
	n := startNode(t, nil)
	createShop(t, n)
	if r := ingestBody(t, n, "shop", stream.CSV, streamtest.Body(stream.CSV, shopHeader, shopRows), nil); r.status != 200 {
		t.Fatalf("ingest: got %d %s", r.status, r.body)
	}
	body := string(do(t, "GET", n.URL()+"/metrics", nil, nil).body)
	for _, m := range []string{
		`demandflow_fsm_apply_seconds_count{command="ingest"} 1`,
		`demandflow_fsm_apply_seconds_count{command="create_dataset"} 1`,
		"demandflow_fsm_object_fold_seconds_count 0", // one call folds nothing
	} {
		if !strings.Contains(body, m+"\n") {
			t.Errorf("GET /metrics: no line %q", m)
		}
	}
	// At least the two entries above were written and committed (the
	// leader's no-op and other entries may add more).
	for _, name := range []string{"demandflow_fsm_commit_seconds_count", "demandflow_raft_log_store_seconds_count"} {
		n := -1
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				n, _ = strconv.Atoi(v)
			}
		}
		if n < 2 {
			t.Errorf("%s: got %d, want >= 2", name, n)
		}
	}
}

// TestDebugPebble checks that /debug/pebble reports both stores' Pebble
// metrics with --enable-debug, and is not served without it.
func TestDebugPebble(t *testing.T) {
	n := startNode(t, func(c *Config) { c.EnableDebug = true })
	createShop(t, n)
	if r := ingestBody(t, n, "shop", stream.CSV, streamtest.Body(stream.CSV, shopHeader, shopRows), nil); r.status != 200 {
		t.Fatalf("ingest: got %d %s", r.status, r.body)
	}
	r := do(t, "GET", n.URL()+"/debug/pebble", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /debug/pebble: got %d %s", r.status, r.body)
	}
	body := string(r.body)
	for _, want := range []string{"== raft store ==\n", "== state store ==\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /debug/pebble: no %q in\n%s", want, body)
		}
	}
	// Pebble prints a "WAL: ... in: <bytes>" line for each store (the
	// state store's shows 0B in: under Raft it keeps no WAL).
	if got := strings.Count(body, "WAL: "); got != 2 {
		t.Errorf("GET /debug/pebble: %d WAL lines, want 2:\n%s", got, body)
	}
	if strings.Index(body, "== raft store ==") > strings.Index(body, "== state store ==") {
		t.Errorf("GET /debug/pebble: stores not in name order")
	}

	off := startNode(t, nil)
	if r := do(t, "GET", off.URL()+"/debug/pebble", nil, nil); r.status != http.StatusNotFound {
		t.Errorf("GET /debug/pebble without --enable-debug: got %d, want 404", r.status)
	}
}
