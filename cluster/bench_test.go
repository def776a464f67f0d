package cluster

import (
	"flag"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/demandflow/demandflow/stream"
	"github.com/hashicorp/raft"
)

// benchRows returns n rows over 1000 series with mostly distinct periods.
func benchRows(n, seed int) []row {
	rows := make([]row, n)
	for i := range rows {
		k := i + seed*n
		rows[i] = row{
			product: fmt.Sprintf("SKU-%05d", k%1000), region: []string{"EU-DE", "EU-FR", "US"}[k%3],
			period: int32(19000 + k/1000), qty: float64(k % 97), price: 9.99, obj: fmt.Sprintf("ord-%09d", k),
		}
	}
	return rows
}

// BenchmarkEncodeIngest compares the payload codecs for one 10k-row
// batch (the reason EncodeIngest writes codecMinLZ).
func BenchmarkEncodeIngest(b *testing.B) {
	sc := testSchema("d", "")
	batch := buildBatch(b, memory.NewGoAllocator(), &sc, benchRows(10000, 0), 10000, nil)
	defer batch.Release()
	for _, c := range []struct {
		name  string
		codec uint8
	}{{"minlz", codecMinLZ}, {"zstd-frame", codecZstdFrame}, {"ipc-zstd", codecIPCZstd}} {
		b.Run(c.name+"/encode", func(b *testing.B) {
			old := ingestCodec
			ingestCodec = c.codec
			defer func() { ingestCodec = old }()
			b.ReportAllocs()
			var size int
			for b.Loop() {
				parts, err := EncodeIngest(meta("d", "tx", ""), &sc, batch, 0)
				if err != nil {
					b.Fatal(err)
				}
				size = 0
				for _, p := range parts {
					size += len(p)
				}
			}
			b.ReportMetric(float64(size), "entry-bytes")
			b.ReportMetric(10000*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
		b.Run(c.name+"/decode", func(b *testing.B) {
			old := ingestCodec
			ingestCodec = c.codec
			parts, err := EncodeIngest(meta("d", "tx", ""), &sc, batch, 0)
			ingestCodec = old
			if err != nil {
				b.Fatal(err)
			}
			_, _, payload, _ := splitEntry(parts[0])
			b.ReportAllocs()
			for b.Loop() {
				recs, err := decodeRows(payload, c.codec, memory.DefaultAllocator)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range recs {
					r.Release()
				}
			}
		})
	}
}

// BenchmarkApplyIngest applies 10,000-row transactions through
// FSM.ApplyBatch with Sync on, on a real directory and on vfs mem.
func BenchmarkApplyIngest(b *testing.B) {
	for _, fsName := range []string{"disk", "mem"} {
		for _, policy := range []stream.DuplicatePolicy{stream.DuplicatesLast, stream.DuplicatesSum} {
			b.Run(fmt.Sprintf("fs=%s/dup=%s/rows=10000", fsName, policy), func(b *testing.B) {
				fs, dir := vfs.FS(vfs.Default), b.TempDir()
				if fsName == "mem" {
					fs, dir = vfs.NewMem(), "fsm"
				}
				s, err := OpenStore(StoreConfig{Dir: dir, FS: fs, Sync: true})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				a := newApplier(b, s)
				sc := testSchema("d", policy)
				a.one(mustCreate(b, sc))
				mem := memory.NewGoAllocator()
				batches := make([]*stream.Batch, 8)
				for i := range batches {
					batches[i] = buildBatch(b, mem, &sc, benchRows(10000, i), 10000, nil)
					defer batches[i].Release()
				}
				b.ReportAllocs()
				i := 0
				var bytes int64
				for b.Loop() {
					b.StopTimer()
					parts := mustIngest(b, meta("d", fmt.Sprint("tx", i), ""), &sc, batches[i%len(batches)], 0)
					logs := make([]*raft.Log, len(parts))
					for j, p := range parts {
						a.idx++
						logs[j] = &raft.Log{Index: a.idx, Term: 1, Type: raft.LogCommand, Data: p}
						bytes += int64(len(p))
					}
					i++
					b.StartTimer()
					for _, r := range a.f.ApplyBatch(logs) {
						if _, ok := r.(*IngestResult); !ok {
							b.Fatalf("response %v", r)
						}
					}
				}
				b.ReportMetric(10000*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
				b.SetBytes(bytes / int64(max(b.N, 1)))
			})
		}
	}
}

// BenchmarkObservations reads one series' 120 observations, staged and
// folded.
func BenchmarkObservations(b *testing.B) {
	s, err := OpenStore(StoreConfig{Dir: b.TempDir(), FoldInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	a := newApplier(b, s)
	sc := testSchema("d", "")
	a.one(mustCreate(b, sc))
	rows := make([]row, 0, 120*1000)
	for p := range 120 {
		for k := range 1000 {
			rows = append(rows, row{fmt.Sprintf("SKU-%05d", k), "EU", int32(19000 + p), float64(p), math.NaN(), "o"})
		}
	}
	batch := buildBatch(b, memory.NewGoAllocator(), &sc, rows, 10000, nil)
	defer batch.Release()
	a.batch(mustIngest(b, meta("d", "tx", ""), &sc, batch, 0)...)
	sid := stream.SeriesID("d", []string{"SKU-00042", "EU"})
	ctx := b.Context()
	read := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			obs, err := s.Observations(ctx, "d", sid, math.MinInt32, math.MaxInt32)
			if err != nil || len(obs) != 120 {
				b.Fatalf("got %d observations, %v", len(obs), err)
			}
		}
	}
	// Staged: the 12 blocks are still pending (FoldInterval may fold them
	// during a long run). Folded: one chunk.
	b.Run("staged", read)
	if err := s.foldStaged(); err != nil {
		b.Fatal(err)
	}
	b.Run("folded", read)
}

// BenchmarkApplyIngestCPU applies period-major 10,000-row batches over
// 16,000 series and 120 months (the shape of `bench ingest`'s generator,
// wrapping around so later batches overwrite) to a store on disk with
// Raft's durability (no sync), four entries per ApplyBatch, and reports the
// process CPU per million rows: apply plus Pebble's flushes and
// compactions and the observation folder running meanwhile. The
// sub-benchmarks differ in the dataset's tracking: off, on without the
// object index, on with it. Run it with -benchtime 1x; -rows sets the row
// count.
func BenchmarkApplyIngestCPU(b *testing.B) {
	const batchRows, nSeries, months = 10000, 16000, 120
	total := *benchCPURows
	off, on := false, true
	for _, tc := range []struct {
		name              string
		tracking, objects *bool
	}{{"tracking=off", &off, nil}, {"tracking=on", &on, &off}, {"tracking=objects", &on, &on}} {
		b.Run(tc.name, func(b *testing.B) {
			sc := testSchema("d", "")
			sc.Tracking, sc.TrackObjects = tc.tracking, tc.objects
			mem := memory.NewGoAllocator()
			var entries [][]byte
			rows := make([]row, batchRows)
			for first := 0; first < total; first += batchRows {
				for j := range rows {
					k := first + j
					rows[j] = row{product: fmt.Sprintf("P%05d", k%nSeries/8), region: fmt.Sprintf("M%d", k%8),
						period: int32(16436 + 30*(k/nSeries%months)), qty: float64(k % 97), price: 9.99, obj: fmt.Sprintf("b-%d", k)}
				}
				batch := buildBatch(b, mem, &sc, rows, batchRows, nil)
				m := meta("d", fmt.Sprintf("%026d", first), "")
				m.Source, m.ReceivedAt = "http", time.Now()
				entries = append(entries, mustIngest(b, m, &sc, batch, 0)...)
				batch.Release()
			}
			for b.Loop() {
				b.StopTimer()
				s, err := OpenStore(StoreConfig{Dir: b.TempDir(), FoldRows: *benchFoldRows, L0CompactionThreshold: *benchL0})
				if err != nil {
					b.Fatal(err)
				}
				a := newApplier(b, s)
				a.one(mustCreate(b, sc))
				cpu0 := processCPU()
				b.StartTimer()
				for i := 0; i < len(entries); i += 4 {
					a.batch(entries[i:min(i+4, len(entries))]...)
				}
				if err := s.foldStaged(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				b.ReportMetric((processCPU()-cpu0).Seconds()/(float64(total)/1e6), "cpu-s/Mrow")
				// What Pebble wrote: the cost of the key layout beyond apply.
				m := s.db.Metrics().Total()
				b.ReportMetric(float64(m.TableBytesFlushed)/1e6, "flushed-MB")
				b.ReportMetric(float64(m.TableBytesCompacted)/1e6, "compacted-MB")
				b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "rows/s")
				if got := s.TrackingWriteErrors(); got != 0 {
					b.Fatalf("%d tracking errors", got)
				}
				// Reads right after the ingest, with what Pebble has not
				// compacted yet: the read side of the LSM settings.
				t0 := time.Now()
				const reads = 2000
				for i := range reads {
					k := i * (nSeries / reads)
					sid := stream.SeriesID("d", []string{fmt.Sprintf("P%05d", k/8), fmt.Sprintf("M%d", k%8)})
					if _, err := s.Observations(b.Context(), "d", sid, math.MinInt32, math.MaxInt32); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(time.Since(t0).Microseconds())/reads, "read-us/series")
				_ = s.Close()
				b.StartTimer()
			}
		})
	}
}

var (
	benchCPURows  = flag.Int("rows", 2_000_000, "rows applied by BenchmarkApplyIngestCPU")
	benchFoldRows = flag.Int("foldrows", 0, "StoreConfig.FoldRows of BenchmarkApplyIngestCPU (0: default)")
	benchL0       = flag.Int("l0", 0, "StoreConfig.L0CompactionThreshold of BenchmarkApplyIngestCPU (0: default)")
)
