package stream_test

// Measured on 2026-11-23, a shared VM with 2 cores (Intel Xeon, linux/amd64,
// Go 1.26.8) that other engineers' builds and tests were loading at the same
// time, with
//
//	go test ./stream -run XXX -bench . -cpu 1 -benchtime 2s
//
// 10,000-row bodies of 6 columns (period, product, region, qty, price,
// object_id); Arrow is an IPC stream already in the output types (fast
// path). rows/s is wall time and moves with the machine's load; rows/cpu-s
// divides by the process CPU time instead (see processCPU).
//
//	format   rows/s, load ~4   rows/s, load ~10   rows/cpu-s, load ~10   B/op, allocs/op
//	csv          2,416,694          833,487            2,917,719          1.06 MB, 149
//	ndjson       2,023,576          842,923            2,202,879          1.07 MB, 144
//	json         1,906,057          810,387            2,066,647          1.98 MB, 144
//	xml            168,645           80,098              186,154         18.1 MB, 490,160
//	arrow       14,073,799        4,357,953           12,154,239          0.82 MB, 182
//
// Targets (>= 1,000,000 rows/s for CSV and NDJSON, >= 10,000,000 rows/s for
// Arrow, on one core) are met per CPU second and in wall time at moderate
// load; under a load of ~10 on 2 cores the wall-clock figures fall below
// them because the benchmark gets well under one core. Allocations do not
// grow with the row count (builders are reserved, the body buffer is pooled).
// What remains in the profiles: for CSV/NDJSON the byte scanners, float
// parsing and Arrow builder appends (offsets + validity bitmaps), each
// 5-15%; for Arrow the series-id hashing (xxhash), the allowed-values check
// and GC/zeroing of the three computed output columns. XML (encoding/xml,
// one allocation per token) has no speed target.

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/demandflow/demandflow/stream"
	"github.com/demandflow/demandflow/stream/streamtest"
)

// benchRows returns n demand rows of 6 columns: 50 products x 2 regions,
// months repeating in runs as an ERP export would list them.
func benchRows(n int) [][]string {
	rows := make([][]string, n)
	for i := range rows {
		region := "EU-DE"
		if i%2 == 1 {
			region = "EU-FR"
		}
		rows[i] = []string{
			fmt.Sprintf("2024-%02d", 1+(i/1000)%12),
			"P" + strconv.Itoa(1000+i%50),
			region,
			strconv.Itoa(i % 500),
			strconv.FormatFloat(9.5+float64(i%7)*0.25, 'f', -1, 64),
			"o-" + strconv.Itoa(100000+i),
		}
	}
	return rows
}

// arrowBody returns rows as an IPC stream already in the output types
// (date32, utf8, float64), the fast path.
func arrowBody(b *testing.B, s *stream.Schema, rows [][]string) []byte {
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "period", Type: arrow.FixedWidthTypes.Date32},
		{Name: "product", Type: arrow.BinaryTypes.String},
		{Name: "region", Type: arrow.BinaryTypes.String},
		{Name: "qty", Type: arrow.PrimitiveTypes.Float64},
		{Name: "price", Type: arrow.PrimitiveTypes.Float64},
		{Name: "object_id", Type: arrow.BinaryTypes.String},
	}, nil)
	rb := array.NewRecordBuilder(mem, schema)
	defer rb.Release()
	for _, r := range rows {
		d, err := stream.ParsePeriod(r[0], s.Frequency)
		if err != nil {
			b.Fatal(err)
		}
		rb.Field(0).(*array.Date32Builder).Append(arrow.Date32(d))
		rb.Field(1).(*array.StringBuilder).Append(r[1])
		rb.Field(2).(*array.StringBuilder).Append(r[2])
		q, _ := strconv.ParseFloat(r[3], 64)
		p, _ := strconv.ParseFloat(r[4], 64)
		rb.Field(3).(*array.Float64Builder).Append(q)
		rb.Field(4).(*array.Float64Builder).Append(p)
		rb.Field(5).(*array.StringBuilder).Append(r[5])
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	if err := w.Write(rec); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func BenchmarkDecode(b *testing.B) {
	s := testSchema()
	const n = 10000
	rows := benchRows(n)
	for _, f := range allFormats {
		body := streamtest.Body(f, header, rows)
		if f == stream.Arrow {
			body = arrowBody(b, s, rows)
		}
		b.Run(fmt.Sprintf("%s/rows=%d", f, n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			rd := bytes.NewReader(body)
			cpu0 := processCPU()
			for b.Loop() {
				rd.Reset(body)
				bt, err := stream.Decode(b.Context(), f, rd, s, stream.DecodeConfig{})
				if err != nil {
					b.Fatal(err)
				}
				if bt.Accepted() != n {
					b.Fatalf("got %d accepted (%v), want %d", bt.Accepted(), bt.Rejected[:1], n)
				}
				bt.Release()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			if cpu := processCPU() - cpu0; cpu > 0 {
				b.ReportMetric(float64(n)*float64(b.N)/cpu.Seconds(), "rows/cpu-s")
			}
		})
	}
}
