package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/demandflow/demandflow/internal/sample"
	"github.com/demandflow/demandflow/stream"
)

func benchNode(b *testing.B) *Node {
	b.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = b.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.RaftAddr = "127.0.0.1:0"
	cfg.GossipAddr = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.DiscardHandler)
	n, err := New(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := n.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = n.Shutdown(b.Context()) })
	waitReady(b, n)
	return n
}

func benchCreate(b *testing.B, n *Node) {
	b.Helper()
	benchCreateSchema(b, n, sample.Schema("bench"))
}

func benchCreateSchema(b *testing.B, n *Node, sc stream.Schema) {
	b.Helper()
	body, _ := json.Marshal(sc)
	resp, err := http.Post(n.URL()+"/v1/datasets", "application/json", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("create dataset: HTTP %d", resp.StatusCode)
	}
}

func benchPost(hc *http.Client, url, ct string, body []byte) error {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return nil
}

// BenchmarkIngestHTTP measures end-to-end single-node ingest over
// HTTP/1.1 on loopback: 10,000-row NDJSON bodies, durable ack (synced
// Pebble commit), 4 concurrent clients. Reports rows/s.
func BenchmarkIngestHTTP(b *testing.B) {
	for _, f := range []stream.Format{stream.NDJSON, stream.CSV, stream.Arrow} {
		b.Run("format="+string(f), func(b *testing.B) {
			n := benchNode(b)
			benchCreate(b, n)
			benchIngest(b, n, "bench", f)
		})
	}
}

// BenchmarkIngestTracking measures what data-flow tracking costs end to
// end: the same NDJSON ingest as BenchmarkIngestHTTP into a dataset with
// tracking off ("tracking": false), transaction tracking only
// ("track_objects": false) and tracking with the object index (the
// default for a dataset with an object-id column), each on a fresh node.
// The target compares objects with off (>= 90%).
func BenchmarkIngestTracking(b *testing.B) {
	off, on := false, true
	for _, mode := range []struct {
		name                   string
		tracking, trackObjects *bool
	}{{"off", &off, nil}, {"on", &on, &off}, {"objects", nil, nil}} {
		b.Run("tracking="+mode.name, func(b *testing.B) {
			n := benchNode(b)
			sc := sample.Schema("bench")
			sc.Tracking, sc.TrackObjects = mode.tracking, mode.trackObjects
			benchCreateSchema(b, n, sc)
			benchIngest(b, n, "bench", stream.NDJSON)
		})
	}
}

// benchIngest posts b.N 10,000-row bodies of the sample data in format f to
// dataset from 4 concurrent clients and reports rows/s and MB/s.
func benchIngest(b *testing.B, n *Node, dataset string, f stream.Format) {
	b.Helper()
	rows, _ := (sample.Config{Products: 200, Markets: 10, Months: 60, BadRows: -1}).Rows()
	const batch = 10000
	var bodies [][]byte
	for i := 0; i+batch <= len(rows); i += batch {
		bodies = append(bodies, benchBody(f, rows[i:i+batch]))
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	url := n.URL() + "/v1/datasets/" + dataset + "/records"
	const clients = 4
	var next atomic.Int64
	var bytesSent atomic.Int64
	b.ResetTimer()
	cpu0 := benchProcessCPU(b)
	start := time.Now()
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for c := 0; c < clients; c++ {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				body := bodies[i%int64(len(bodies))]
				bytesSent.Add(int64(len(body)))
				if err := benchPost(hc, url, f.ContentType(), body); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*batch)/el.Seconds(), "rows/s")
	b.ReportMetric(float64(bytesSent.Load())/el.Seconds()/1e6, "MB/s")
	// CPU per row of the whole process (clients, node, Pebble's background
	// work): steadier than rows/s on a shared machine.
	b.ReportMetric((benchProcessCPU(b)-cpu0).Seconds()/(float64(b.N*batch)/1e6), "cpu-s/Mrow")
}

// benchProcessCPU returns the process's user+system CPU time.
func benchProcessCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchBody(f stream.Format, rows [][]string) []byte {
	var buf bytes.Buffer
	switch f {
	case stream.NDJSON:
		_ = sample.WriteNDJSON(&buf, sample.Header, rows)
	case stream.CSV:
		_ = sample.WriteCSV(&buf, sample.Header, rows)
	default:
		return streamtestBody(f, rows)
	}
	return buf.Bytes()
}

// BenchmarkReadSeries reads one series' 120 observations over HTTP and
// reports p50/p99 latency in ms.
func BenchmarkReadSeries(b *testing.B) {
	n := benchNode(b)
	benchCreate(b, n)
	rows, _ := (sample.Config{Products: 50, Markets: 12, Months: 120, BadRows: -1}).Rows()
	for i := 0; i < len(rows); i += 20000 {
		if err := benchPost(http.DefaultClient, n.URL()+"/v1/datasets/bench/records", "text/csv", benchBody(stream.CSV, rows[i:min(i+20000, len(rows))])); err != nil {
			b.Fatal(err)
		}
	}
	list, _, err := n.cl.Store().Series(b.Context(), "bench", nil, 0, 100)
	if err != nil || len(list) == 0 {
		b.Fatalf("series: %v", err)
	}
	hc := &http.Client{}
	lat := make([]time.Duration, 0, 1<<16)
	i := 0
	for b.Loop() {
		url := n.URL() + "/v1/datasets/bench/series/" + formatSeriesID(list[i%len(list)].ID) + "/observations"
		i++
		t0 := time.Now()
		resp, err := hc.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
