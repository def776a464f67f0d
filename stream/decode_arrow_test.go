package stream_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/demandflow/demandflow/stream"
)

// ipcStream writes recs as one IPC stream.
func ipcStream(t *testing.T, recs ...arrow.RecordBatch) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(recs[0].Schema()))
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		r.Release()
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var fastFields = []arrow.Field{
	{Name: "period", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "product", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "region", Type: arrow.BinaryTypes.String},
	{Name: "qty", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "object_id", Type: arrow.BinaryTypes.String, Nullable: true},
}

type fastRow struct {
	day     int32
	product string
	region  string
	qty     float64
	oid     string
}

func fastRecord(t *testing.T, rows ...fastRow) arrow.RecordBatch {
	return record(t, memory.NewGoAllocator(), fastFields, func(b *array.RecordBuilder) {
		for _, r := range rows {
			b.Field(0).(*array.Date32Builder).Append(arrow.Date32(r.day))
			b.Field(1).(*array.StringBuilder).Append(r.product)
			b.Field(2).(*array.StringBuilder).Append(r.region)
			b.Field(3).(*array.Float64Builder).Append(r.qty)
			if r.oid == "" {
				b.Field(4).(*array.StringBuilder).AppendNull()
			} else {
				b.Field(4).(*array.StringBuilder).Append(r.oid)
			}
		}
	})
}

func TestArrowFastPath(t *testing.T) {
	jan15, _ := stream.ParsePeriod("2024-01-15", stream.Day)
	feb, _ := stream.ParsePeriod("2024-02", stream.Day)
	body := ipcStream(t,
		fastRecord(t, fastRow{jan15, "P1", "EU-DE", 1, "o-1"}, fastRow{feb, "P2", "EU-FR", 2, ""}, fastRow{feb, "P3", "EU-FR", 3, "o-3"}),
		// a rejected row sends this batch through the row builder
		fastRecord(t, fastRow{feb, "P4", "EU-XX", 4, "o-4"}, fastRow{feb, "P5", "EU-DE", 5, "o-5"}),
		fastRecord(t, fastRow{jan15, "P6", "EU-DE", 6, "o-6"}),
	)
	want := []string{
		"1|2024-01|P1|EU-DE|1|(null)|o-1",
		"2|2024-02|P2|EU-FR|2|(null)|(null)",
		"3|2024-02|P3|EU-FR|3|(null)|o-3",
		"5|2024-02|P5|EU-DE|5|(null)|o-5",
		"6|2024-01|P6|EU-DE|6|(null)|o-6",
	}
	wantRej := []stream.RowError{{Row: 4, ObjectID: "o-4", Field: "region", Reason: `value "EU-XX" not allowed (want one of EU-DE, EU-FR)`}}
	got, rej, err := decode(t, stream.Arrow, body, testSchema(), stream.DecodeConfig{ChunkRows: 2})
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if !slices.Equal(got, want) || !slices.Equal(rej, wantRej) {
		t.Errorf("got %q %+v, want %q %+v", got, rej, want, wantRej)
	}
}

func TestArrowZeroCopy(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	body := ipcStream(t, fastRecord(t, fastRow{0, "P1", "EU-DE", 1, "o-1"}))
	b, err := stream.Decode(t.Context(), stream.Arrow, bytes.NewReader(body), testSchema(), stream.DecodeConfig{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	rec := b.Records[0]
	if got := rec.Column(stream.IdxFirstDimension).(*array.String).Value(0); got != "P1" {
		t.Errorf("got product %q, want P1", got)
	}
	// price is absent from the stream: an all-null column.
	if got := rec.Column(testSchema().IdxCovariate(0)).NullN(); got != 1 {
		t.Errorf("got %d null prices, want 1", got)
	}
}

func TestArrowTypes(t *testing.T) {
	fields := []arrow.Field{
		{Name: "period", Type: &arrow.TimestampType{Unit: arrow.Microsecond}},
		{Name: "product", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: arrow.BinaryTypes.String}},
		{Name: "region", Type: arrow.BinaryTypes.LargeString},
		{Name: "qty", Type: arrow.PrimitiveTypes.Int64},
		{Name: "price", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "object_id", Type: arrow.PrimitiveTypes.Uint32},
		{Name: "ignored", Type: arrow.ListOf(arrow.PrimitiveTypes.Int8)},
	}
	rec := record(t, memory.NewGoAllocator(), fields, func(b *array.RecordBuilder) {
		// 2024-03-31T23:00:00Z and 1969-12-31T12:00:00Z
		b.Field(0).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{1711926000_000000, -43200_000000}, nil)
		d := b.Field(1).(*array.BinaryDictionaryBuilder)
		_ = d.AppendString("P1")
		_ = d.AppendString("P2")
		b.Field(2).(*array.LargeStringBuilder).AppendValues([]string{"EU-DE", "EU-FR"}, nil)
		b.Field(3).(*array.Int64Builder).AppendValues([]int64{7, 8}, nil)
		b.Field(4).(*array.Float32Builder).AppendValues([]float32{1.5, 0}, []bool{true, false})
		b.Field(5).(*array.Uint32Builder).AppendValues([]uint32{42, 43}, nil)
		b.Field(6).(*array.ListBuilder).AppendNull()
		b.Field(6).(*array.ListBuilder).AppendNull()
	})
	want := []string{"1|2024-03|P1|EU-DE|7|1.5|42", "2|1969-12|P2|EU-FR|8|(null)|43"}
	got, rej, err := decode(t, stream.Arrow, ipcStream(t, rec), testSchema(), stream.DecodeConfig{})
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if !slices.Equal(got, want) || len(rej) != 0 {
		t.Errorf("got %q %+v, want %q", got, rej, want)
	}

	date64 := record(t, memory.NewGoAllocator(), []arrow.Field{
		{Name: "period", Type: arrow.FixedWidthTypes.Date64},
		{Name: "product", Type: arrow.PrimitiveTypes.Int8},
		{Name: "region", Type: arrow.BinaryTypes.String},
		{Name: "qty", Type: arrow.PrimitiveTypes.Float64},
	}, func(b *array.RecordBuilder) {
		b.Field(0).(*array.Date64Builder).Append(arrow.Date64(1709251200000)) // 2024-03-01
		b.Field(1).(*array.Int8Builder).Append(-5)
		b.Field(2).(*array.StringBuilder).Append("EU-DE")
		b.Field(3).(*array.Float64Builder).Append(1)
	})
	got, _, err = decode(t, stream.Arrow, ipcStream(t, date64), testSchema(), stream.DecodeConfig{})
	if want := []string{"1|2024-03|-5|EU-DE|1|(null)|(null)"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("date64: got %q, %v, want %q", got, err, want)
	}
}

func TestArrowSyntax(t *testing.T) {
	missing := record(t, memory.NewGoAllocator(), []arrow.Field{
		{Name: "period", Type: arrow.BinaryTypes.String},
		{Name: "product", Type: arrow.BinaryTypes.String},
		{Name: "qty", Type: arrow.BinaryTypes.String},
	}, func(b *array.RecordBuilder) {})
	badType := record(t, memory.NewGoAllocator(), []arrow.Field{
		{Name: "period", Type: arrow.BinaryTypes.String},
		{Name: "product", Type: arrow.BinaryTypes.String},
		{Name: "region", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "qty", Type: arrow.BinaryTypes.String},
	}, func(b *array.RecordBuilder) {})
	good := ipcStream(t, fastRecord(t, fastRow{0, "P1", "EU-DE", 1, ""}))
	tests := []struct {
		name  string
		body  []byte
		field string
		msg   string
	}{
		{"missing column", ipcStream(t, missing), "region", `missing required column "region"`},
		{"unusable type", ipcStream(t, badType), "region", "has type bool"},
		{"garbage", []byte("period,qty\n2024,1\n"), "", "unreadable IPC stream"},
		{"truncated", good[:len(good)-30], "", "unreadable IPC stream"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decode(t, stream.Arrow, tc.body, testSchema(), stream.DecodeConfig{})
			wantSyntax(t, err, stream.Arrow, 0, 0, tc.field, tc.msg)
		})
	}
}
