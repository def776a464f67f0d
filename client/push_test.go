package client

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// fakeIngest is an ingest endpoint that decodes bodies with the standard
// library, rejects records whose qty is negative (row numbers relative to
// the body, like the node) and remembers every accepted record as a
// canonical string.
type fakeIngest struct {
	mu      sync.Mutex
	records map[string]int // canonical record -> times stored
	keys    map[string]*IngestResult
	bodies  int
	encoded int             // bodies that came gzip- or zstd-encoded
	fail    func(n int) int // status to answer request n with (0 = normal)
}

var (
	zstdDecoder, _ = zstd.NewReader(nil)
	zstdEncoder, _ = zstd.NewWriter(nil)
)

func newFakeIngest() *fakeIngest {
	return &fakeIngest{records: map[string]int{}, keys: map[string]*IngestResult{}}
}

func (f *fakeIngest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies++
	switch r.Header.Get("Content-Encoding") {
	case "zstd":
		body, err = zstdDecoder.DecodeAll(body, nil)
		f.encoded++
	case "gzip":
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(body)); err == nil {
			body, err = io.ReadAll(zr)
		}
		f.encoded++
	}
	if err != nil {
		w.WriteHeader(400)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	if f.fail != nil {
		if st := f.fail(f.bodies); st != 0 {
			w.WriteHeader(st)
			_, _ = fmt.Fprintf(w, `{"error":"injected %d"}`, st)
			return
		}
	}
	key := r.Header.Get("Idempotency-Key")
	if prev, ok := f.keys[key]; ok {
		p := *prev
		p.Replayed = true
		_ = json.NewEncoder(w).Encode(p)
		return
	}
	recs, err := decodeRecords(r.Header.Get("Content-Type"), body)
	if err != nil {
		w.WriteHeader(400)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	res := &IngestResult{TxID: key, Errors: []RowError{}}
	for i, rec := range recs {
		if q, _ := strconv.ParseFloat(rec["qty"], 64); q < 0 {
			res.Rejected++
			if len(res.Errors) < 100 {
				res.Errors = append(res.Errors, RowError{Row: i + 1, ObjectID: rec["id"], Field: "qty", Reason: "below min 0"})
			}
			continue
		}
		res.Accepted++
		f.records[canonical(rec)]++
	}
	f.keys[key] = res
	_ = json.NewEncoder(w).Encode(res)
}

func canonical(rec map[string]string) string {
	keys := make([]string, 0, len(rec))
	for k := range rec {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + rec[k] + ";")
	}
	return b.String()
}

func decodeRecords(ct string, body []byte) ([]map[string]string, error) {
	var out []map[string]string
	switch ct {
	case ContentTypeCSV:
		all, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			return nil, err
		}
		for _, r := range all[1:] {
			m := map[string]string{}
			for i, h := range all[0] {
				m[h] = r[i]
			}
			out = append(out, m)
		}
	case ContentTypeNDJSON:
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "" {
				continue
			}
			m, err := jsonRecord(sc.Bytes())
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
	case ContentTypeJSON:
		var arr []json.RawMessage
		if err := json.Unmarshal(body, &arr); err != nil {
			return nil, err
		}
		for _, a := range arr {
			m, err := jsonRecord(a)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
	case ContentTypeXML:
		var doc struct {
			Records []struct {
				Attrs  []xml.Attr `xml:",any,attr"`
				Fields []struct {
					XMLName xml.Name
					Value   string `xml:",chardata"`
				} `xml:",any"`
			} `xml:",any"`
		}
		if err := xml.Unmarshal(body, &doc); err != nil {
			return nil, err
		}
		for _, r := range doc.Records {
			m := map[string]string{}
			for _, a := range r.Attrs {
				m[a.Name.Local] = a.Value
			}
			for _, f := range r.Fields {
				m[f.XMLName.Local] = f.Value
			}
			out = append(out, m)
		}
	case ContentTypeArrow:
		sp := &arrowSplitter{br: bufio.NewReader(bytes.NewReader(body))}
		for {
			_, typ, rows, err := sp.readMessage()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
			for range rows {
				if typ == arrowRecordBatch {
					out = append(out, map[string]string{"arrow": "row"})
				}
			}
		}
	default:
		return nil, fmt.Errorf("content type %q", ct)
	}
	return out, nil
}

func jsonRecord(b []byte) (map[string]string, error) {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for k, v := range raw {
		m[k] = fmt.Sprint(v)
	}
	return m, nil
}

// input is a generated data set in every text format. Rows whose index is
// in bad have qty -1.
type input struct {
	rows [][3]string // id, product, qty
	bad  map[int]bool
}

func genInput(n int) input {
	in := input{bad: map[int]bool{}}
	for i := range n {
		q := strconv.Itoa(i % 97)
		if i%13 == 5 {
			q = "-1"
			in.bad[i] = true
		}
		in.rows = append(in.rows, [3]string{fmt.Sprintf("o-%d", i), fmt.Sprintf("P,%d \"x\"\nline2", i%7), q})
	}
	return in
}

func (in input) encode(f Format) []byte {
	var b bytes.Buffer
	switch f {
	case FormatCSV:
		w := csv.NewWriter(&b)
		_ = w.Write([]string{"id", "product", "qty"})
		for i, r := range in.rows {
			if i%10 == 3 {
				w.Flush()
				b.WriteString("\n") // blank line: skipped, not counted
			}
			_ = w.Write(r[:])
		}
		w.Flush()
	case FormatNDJSON, FormatJSON:
		if f == FormatJSON {
			b.WriteString("[\n")
		}
		for i, r := range in.rows {
			p, _ := json.Marshal(r[1])
			if f == FormatJSON && i > 0 {
				b.WriteString(" ,\n")
			}
			fmt.Fprintf(&b, `{"id":%q,"product":%s,"qty":%s}`, r[0], p, r[2])
			if f == FormatNDJSON {
				b.WriteString("\n")
				if i%10 == 3 {
					b.WriteString("  \n")
				}
			}
		}
		if f == FormatJSON {
			b.WriteString("\n]\n")
		}
	case FormatXML:
		b.WriteString("<?xml version=\"1.0\"?>\n<records xmlns:x=\"urn:x\">\n  <!-- header -->\n")
		for i, r := range in.rows {
			if i%2 == 0 {
				fmt.Fprintf(&b, "  <record id=%q><product>", r[0])
				_ = xml.EscapeText(&b, []byte(r[1]))
				fmt.Fprintf(&b, "</product><qty>%s</qty></record>\n", r[2])
			} else {
				fmt.Fprintf(&b, "  <record id=%q qty=%q><product><![CDATA[%s]]></product></record>\n", r[0], r[2], r[1])
			}
		}
		b.WriteString("</records>\n")
	}
	return b.Bytes()
}

func TestPushFormats(t *testing.T) {
	const n = 1000
	in := genInput(n)
	for _, tc := range []struct {
		f        Format
		compress string
	}{{FormatCSV, ""}, {FormatNDJSON, ""}, {FormatJSON, ""}, {FormatXML, ""}, {FormatCSV, "gzip"}, {FormatNDJSON, "zstd"}} {
		f := tc.f
		t.Run(string(f)+"/"+tc.compress, func(t *testing.T) {
			srv := newFakeIngest()
			hs := httptest.NewServer(srv)
			defer hs.Close()
			c := newTestClient(t, hs.URL)
			var mu sync.Mutex
			var rejects []Reject
			var encode func([]byte) []byte
			if tc.compress == "zstd" {
				encode = func(b []byte) []byte { return zstdEncoder.EncodeAll(b, nil) }
			}
			p, err := NewPusher(c, "ds", f, PushConfig{Batch: 37, Concurrency: 3, ContentEncoding: tc.compress, Encode: encode, OnBatch: func(o BatchOutcome) {
				mu.Lock()
				rejects = append(rejects, o.Rejects...)
				mu.Unlock()
			}})
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Push(t.Context(), bytes.NewReader(in.encode(f)))
			if err != nil {
				t.Fatal(err)
			}
			wantBatches := int64((n + 36) / 37)
			if !res.OK() || res.Rows != n || res.Batches != wantBatches || res.Acked != wantBatches ||
				res.Accepted != int64(n-len(in.bad)) || res.Rejected != int64(len(in.bad)) {
				t.Fatalf("got %+v, want %d rows in %d acked batches, %d rejected", res, n, wantBatches, len(in.bad))
			}
			if want := map[bool]int{false: 0, true: srv.bodies}[tc.compress != ""]; srv.encoded != want {
				t.Fatalf("%d of %d bodies %s-encoded, want %d", srv.encoded, srv.bodies, tc.compress, want)
			}
			for i, r := range in.rows {
				rec := map[string]string{"id": r[0], "product": r[1], "qty": r[2]}
				got := srv.records[canonical(rec)]
				if want := map[bool]int{true: 0, false: 1}[in.bad[i]]; got != want {
					t.Fatalf("row %d stored %d times, want %d", i+1, got, want)
				}
			}
			slices.SortFunc(rejects, func(a, b Reject) int { return int(a.Row - b.Row) })
			if len(rejects) != len(in.bad) {
				t.Fatalf("got %d rejects, want %d", len(rejects), len(in.bad))
			}
			for _, rj := range rejects {
				i := int(rj.Row) - 1
				if !in.bad[i] || rj.ObjectID != in.rows[i][0] || rj.Reason != "below min 0" || !strings.Contains(rj.Record, in.rows[i][0]) {
					t.Fatalf("reject %+v: want input row %d (%v)", rj, i+1, in.rows[i])
				}
			}
		})
	}
}

func TestPushEncodingNeedsEncoder(t *testing.T) {
	c := newTestClient(t, "http://127.0.0.1:1")
	if _, err := NewPusher(c, "ds", FormatCSV, PushConfig{ContentEncoding: "zstd"}); err == nil || !strings.Contains(err.Error(), `"zstd" needs PushConfig.Encode`) {
		t.Errorf("zstd without Encode: got %v, want an error naming it", err)
	}
}

func TestPushArrow(t *testing.T) {
	data, err := os.ReadFile("testdata/dict.arrows") // 5 record batches of 3..7 rows, dictionary column
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		batch       int
		wantBatches int64
	}{{1, 5}, {7, 3}, {100, 1}} {
		t.Run(fmt.Sprint("batch=", tc.batch), func(t *testing.T) {
			srv := newFakeIngest()
			hs := httptest.NewServer(srv)
			defer hs.Close()
			var sizes []int
			p, _ := NewPusher(newTestClient(t, hs.URL), "ds", FormatArrow, PushConfig{Batch: tc.batch, Concurrency: 1,
				OnBatch: func(o BatchOutcome) { sizes = append(sizes, o.Rows) }})
			res, err := p.Push(t.Context(), bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if res.Rows != 25 || res.Accepted != 25 || res.Batches != tc.wantBatches || !res.OK() {
				t.Errorf("got %+v (batch rows %v), want 25 rows in %d batches", res, sizes, tc.wantBatches)
			}
		})
	}
	p, _ := NewPusher(newTestClient(t, "http://127.0.0.1:1"), "ds", FormatArrow, PushConfig{})
	if _, err := p.Push(t.Context(), strings.NewReader("PAR1 not arrow at all")); err == nil {
		t.Errorf("push of a non-Arrow input: got no error")
	}
}

func TestPushFailures(t *testing.T) {
	in := genInput(100)
	t.Run("data error goes on", func(t *testing.T) {
		srv := newFakeIngest()
		srv.fail = func(n int) int { return map[bool]int{true: 400}[n == 2] }
		hs := httptest.NewServer(srv)
		defer hs.Close()
		p, _ := NewPusher(newTestClient(t, hs.URL), "ds", FormatNDJSON, PushConfig{Batch: 10, Concurrency: 1})
		res, err := p.Push(t.Context(), bytes.NewReader(in.encode(FormatNDJSON)))
		if err != nil {
			t.Fatal(err)
		}
		if res.OK() || res.Failed != 1 || res.Acked != 9 || res.FailedRows != 10 || res.FirstError == nil {
			t.Errorf("got %+v, want 1 failed batch of 10 rows and 9 acked", res)
		}
	})
	t.Run("unreachable stops", func(t *testing.T) {
		srv := newFakeIngest()
		srv.fail = func(n int) int { return map[bool]int{true: 503}[n >= 3] }
		hs := httptest.NewServer(srv)
		defer hs.Close()
		c, _ := New(Config{Addrs: []string{hs.URL}, MaxRetries: 2, Backoff: time.Millisecond})
		p, _ := NewPusher(c, "ds", FormatNDJSON, PushConfig{Batch: 10, Concurrency: 1})
		res, err := p.Push(t.Context(), bytes.NewReader(in.encode(FormatNDJSON)))
		if err != nil {
			t.Fatal(err)
		}
		if res.Acked != 2 || res.Failed != 1 || res.Acked+res.Failed+res.Unsent != res.Batches || res.OK() {
			t.Errorf("got %+v, want 2 acked, 1 failed, the rest unsent", res)
		}
	})
	t.Run("retry replays", func(t *testing.T) {
		srv := newFakeIngest()
		hs := httptest.NewServer(srv)
		defer hs.Close()
		c := newTestClient(t, hs.URL)
		cfg := PushConfig{Batch: 10, Concurrency: 2, KeyPrefix: "run-1"}
		p, _ := NewPusher(c, "ds", FormatNDJSON, cfg)
		body := in.encode(FormatNDJSON)
		if _, err := p.Push(t.Context(), bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		res, err := p.Push(t.Context(), bytes.NewReader(body)) // the same keys again
		if err != nil || res.Replayed != 10 {
			t.Fatalf("second push: got %+v, %v; want 10 replayed batches", res, err)
		}
		for rec, n := range srv.records {
			if n != 1 {
				t.Fatalf("record %s stored %d times", rec, n)
			}
		}
	})
}

// genReader streams n NDJSON rows without holding them.
type genReader struct {
	n, i int
	buf  []byte
}

func (g *genReader) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		if g.i == g.n {
			return 0, io.EOF
		}
		g.buf = fmt.Appendf(g.buf[:0], `{"period":"2024-%02d","product":"P%05d","market":"EU-DE","qty":%d,"price":9.95,"object_id":"o-%09d"}`+"\n",
			g.i%12+1, g.i%10000, g.i%1000, g.i)
		g.i++
	}
	k := copy(p, g.buf)
	g.buf = g.buf[k:]
	return k, nil
}

// TestPushFlatMemory streams ~200 MB of NDJSON through a Pusher to a server
// that discards the bodies and checks the heap stays bounded. Set
// DEMANDFLOW_PUSH_ROWS=50000000 for the 5 GB run (too slow for CI under
// -race; its figure is in bench/RESULTS.md).
func TestPushFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 200 MB; skipped with -short")
	}
	rows := 2_000_000 // ~106 bytes each
	if v := os.Getenv("DEMANDFLOW_PUSH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("DEMANDFLOW_PUSH_ROWS=%q: want a row count", v)
		}
		rows = n
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		_, _ = fmt.Fprintf(w, `{"tx_id":"t","accepted":%d,"rejected":0,"errors":[]}`, n/106)
	}))
	defer hs.Close()
	var peak uint64
	var ms runtime.MemStats
	sample := func() {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				sample()
			}
		}
	})
	p, _ := NewPusher(newTestClient(t, hs.URL), "ds", FormatNDJSON, PushConfig{Batch: 10000, Concurrency: 4})
	res, err := p.Push(t.Context(), &genReader{n: rows})
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != int64(rows) || !res.OK() || res.Bytes < int64(rows)*100 {
		t.Fatalf("got %+v, want %d rows (>= %d MB) acked", res, rows, rows*100>>20)
	}
	// 5 batches of ~1.2 MB live, plus GC headroom and the server side.
	const bound = 64 << 20
	if peak > bound {
		t.Errorf("peak HeapInuse %d MB, want <= %d MB for %d MB pushed", peak>>20, bound>>20, res.Bytes>>20)
	}
	t.Logf("pushed %d MB, peak HeapInuse %d MB", res.Bytes>>20, peak>>20)
}
