package stream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/demandflow/demandflow/stream"
	"github.com/demandflow/demandflow/stream/streamtest"
)

var allFormats = []stream.Format{stream.CSV, stream.NDJSON, stream.JSON, stream.XML, stream.Arrow}

func ptr(f float64) *float64 { return &f }

// testSchema is the dataset of DESIGN.md's example.
func testSchema() *stream.Schema {
	s := &stream.Schema{
		Name: "exports", Frequency: stream.Month, Period: "period",
		Dimensions: []string{"product", "region"}, Measure: "qty",
		Covariates: []string{"price"}, ObjectID: "object_id",
		Rules: map[string]stream.Rule{
			"qty":    {Min: ptr(0), Max: ptr(1000)},
			"region": {Allowed: []string{"EU-DE", "EU-FR"}},
		},
	}
	if err := s.Validate(); err != nil {
		panic(err)
	}
	return s
}

var header = []string{"period", "product", "region", "qty", "price", "object_id"}

// decode decodes body with a checked allocator and returns the rows as text
// (see dump) and the rejected rows.
func decode(t *testing.T, f stream.Format, body []byte, s *stream.Schema, cfg stream.DecodeConfig) ([]string, []stream.RowError, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	cfg.Allocator = mem
	b, err := stream.Decode(t.Context(), f, bytes.NewReader(body), s, cfg)
	if err != nil {
		if b != nil {
			t.Errorf("got batch %v with error %v, want nil batch", b, err)
		}
		return nil, nil, err
	}
	defer b.Release()
	if got, want := b.RowsIn, b.Accepted()+rejectedRows(b.Rejected); got != want {
		t.Errorf("got RowsIn %d, want accepted+rejected %d", got, want)
	}
	return dump(t, s, b), b.Rejected, nil
}

func rejectedRows(errs []stream.RowError) int {
	rows := map[int]bool{}
	for _, e := range errs {
		rows[e.Row] = true
	}
	return len(rows)
}

// dump renders every accepted row as "row|period|dims...|measure|covs...|oid"
// after checking the record schema and the series id.
func dump(t *testing.T, s *stream.Schema, b *stream.Batch) []string {
	t.Helper()
	var out []string
	want := s.ArrowSchema()
	for _, rec := range b.Records {
		if !rec.Schema().Equal(want) {
			t.Fatalf("got schema %v, want %v", rec.Schema(), want)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			var parts []string
			var dims []string
			for c := 1; c < int(rec.NumCols()); c++ {
				col := rec.Column(c)
				v := col.ValueStr(i)
				if c == stream.IdxPeriod {
					v = stream.FormatPeriod(int32(col.(*array.Date32).Value(i)), s.Frequency)
				}
				if c >= stream.IdxFirstDimension && c < s.IdxMeasure() {
					dims = append(dims, v)
				}
				parts = append(parts, v)
			}
			sid := rec.Column(stream.IdxSeriesID).(*array.Uint64).Value(i)
			if want := stream.SeriesID(s.Name, dims); sid != want {
				t.Errorf("row %s: got series id %x, want %x", parts[0], sid, want)
			}
			out = append(out, strings.Join(parts, "|"))
		}
	}
	return out
}

var goodRows = [][]string{
	{"2024-01", "P1", "EU-DE", "3", "9.5", "o-1"},
	{"2024-01-17", "P1", "EU-FR", "0", "", "o-2"},
	{"2024-02-29T23:30:00Z", "P,2", "EU-DE", "1000", "1e2", ""},
	{"2024-Q2", "P \"3\"", "EU-FR", "12.25", "-3", "o-4"},
	{"2024", "Zoë", "EU-DE", " 7 ", "", "o-5"},
}

var goodWant = []string{
	"1|2024-01|P1|EU-DE|3|9.5|o-1",
	"2|2024-01|P1|EU-FR|0|(null)|o-2",
	"3|2024-02|P,2|EU-DE|1000|100|(null)",
	"4|2024-04|P \"3\"|EU-FR|12.25|-3|o-4",
	"5|2024-01|Zoë|EU-DE|7|(null)|o-5",
}

func TestDecodeRoundTrip(t *testing.T) {
	s := testSchema()
	for _, f := range allFormats {
		t.Run(string(f), func(t *testing.T) {
			got, rej, err := decode(t, f, streamtest.Body(f, header, goodRows), s, stream.DecodeConfig{ChunkRows: 2})
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if len(rej) != 0 {
				t.Errorf("got rejected %v, want none", rej)
			}
			if !slices.Equal(got, goodWant) {
				t.Errorf("got rows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(goodWant, "\n"))
			}
		})
	}
}

func TestDecodeEmptyBody(t *testing.T) {
	for _, f := range allFormats {
		for _, body := range []string{"", "\n"} {
			if f == stream.Arrow && body != "" {
				continue
			}
			t.Run(fmt.Sprintf("%s/%q", f, body), func(t *testing.T) {
				got, rej, err := decode(t, f, []byte(body), testSchema(), stream.DecodeConfig{})
				if err != nil || len(got) != 0 || len(rej) != 0 {
					t.Errorf("got %v, %v, %v, want empty batch", got, rej, err)
				}
			})
		}
	}
}

// rowCase is one bad row and the rejection every format must report.
type rowCase struct {
	name string
	row  []string
	want stream.RowError
}

var badRows = []rowCase{
	{"below min", []string{"2024-01", "P1", "EU-DE", "-1", "", "o-9"}, stream.RowError{Row: 2, ObjectID: "o-9", Field: "qty", Reason: "below min 0"}},
	{"above max", []string{"2024-01", "P1", "EU-DE", "1000.5", "", "o-9"}, stream.RowError{Row: 2, ObjectID: "o-9", Field: "qty", Reason: "above max 1000"}},
	{"not allowed", []string{"2024-01", "P1", "EU-XX", "1", "", "o-9"}, stream.RowError{Row: 2, ObjectID: "o-9", Field: "region", Reason: `value "EU-XX" not allowed (want one of EU-DE, EU-FR)`}},
	{"not a number", []string{"2024-01", "P1", "EU-DE", "abc", "", "o-9"}, stream.RowError{Row: 2, ObjectID: "o-9", Field: "qty", Reason: `not a number: "abc"`}},
	{"covariate not a number", []string{"2024-01", "P1", "EU-DE", "1", "x1", ""}, stream.RowError{Row: 2, Field: "price", Reason: `not a number: "x1"`}},
	{"missing measure", []string{"2024-01", "P1", "EU-DE", "", "", "o-9"}, stream.RowError{Row: 2, ObjectID: "o-9", Field: "qty", Reason: "missing"}},
	{"missing dimension", []string{"2024-01", "", "EU-DE", "1", "", "o-9"}, stream.RowError{Row: 2, ObjectID: "o-9", Field: "product", Reason: "missing"}},
	{"missing period", []string{"", "P1", "EU-DE", "1", "", "o-9"}, stream.RowError{Row: 2, ObjectID: "o-9", Field: "period", Reason: "missing"}},
	{"bad period", []string{"2024-13", "P1", "EU-DE", "1", "", "o-9"}, stream.RowError{Row: 2, ObjectID: "o-9", Field: "period", Reason: `invalid period "2024-13": want 2024-03-15, 2024-W11, 2024-03, 2024-Q1, 2024 or RFC 3339`}},
	{"NaN", []string{"2024-01", "P1", "EU-DE", "NaN", "", "o-9"}, stream.RowError{Row: 2, ObjectID: "o-9", Field: "qty", Reason: `not a finite number: "NaN"`}},
	{"Inf covariate", []string{"2024-01", "P1", "EU-DE", "1", "+Inf", "o-9"}, stream.RowError{Row: 2, ObjectID: "o-9", Field: "price", Reason: `not a finite number: "+Inf"`}},
}

func TestDecodeRowErrors(t *testing.T) {
	s := testSchema()
	for _, f := range allFormats {
		for _, tc := range badRows {
			t.Run(string(f)+"/"+tc.name, func(t *testing.T) {
				rows := [][]string{goodRows[0], tc.row, goodRows[1]}
				got, rej, err := decode(t, f, streamtest.Body(f, header, rows), s, stream.DecodeConfig{})
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				if len(rej) != 1 || rej[0] != tc.want {
					t.Errorf("got rejected %+v, want [%+v]", rej, tc.want)
				}
				want := []string{goodWant[0], strings.Replace(goodWant[1], "2|", "3|", 1)}
				if !slices.Equal(got, want) {
					t.Errorf("got rows %q, want %q", got, want)
				}
			})
		}
	}
}

func TestDecodeRequiredByRule(t *testing.T) {
	s := testSchema()
	s.Rules["price"] = stream.Rule{Required: true}
	s.Rules["object_id"] = stream.Rule{Required: true, Allowed: []string{"o-1", "o-2"}}
	rows := [][]string{
		{"2024-01", "P1", "EU-DE", "1", "", "o-1"},
		{"2024-01", "P1", "EU-DE", "1", "2", ""},
		{"2024-01", "P1", "EU-DE", "1", "2", "o-3"},
		{"2024-01", "P1", "EU-DE", "1", "2", "o-2"},
	}
	want := []stream.RowError{
		{Row: 1, ObjectID: "o-1", Field: "price", Reason: "missing"},
		{Row: 2, Field: "object_id", Reason: "missing"},
		{Row: 3, ObjectID: "o-3", Field: "object_id", Reason: `value "o-3" not allowed (want one of o-1, o-2)`},
	}
	for _, f := range allFormats {
		t.Run(string(f), func(t *testing.T) {
			got, rej, err := decode(t, f, streamtest.Body(f, header, rows), s, stream.DecodeConfig{})
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if !slices.Equal(rej, want) {
				t.Errorf("got rejected %+v, want %+v", rej, want)
			}
			if len(got) != 1 || !strings.HasPrefix(got[0], "4|") {
				t.Errorf("got rows %q, want row 4 only", got)
			}
		})
	}
}

func TestDecodeMaxRows(t *testing.T) {
	for _, f := range allFormats {
		t.Run(string(f), func(t *testing.T) {
			_, _, err := decode(t, f, streamtest.Body(f, header, goodRows), testSchema(), stream.DecodeConfig{MaxRows: 3})
			var se *stream.SyntaxError
			if !errors.As(err, &se) || se.Row != 4 || !strings.Contains(se.Msg, "too many rows") {
				t.Errorf("got error %v, want too many rows at row 4", err)
			}
		})
	}
}

func TestDecodeCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, f := range allFormats {
		b, err := stream.Decode(ctx, f, bytes.NewReader(streamtest.Body(f, header, goodRows)), testSchema(), stream.DecodeConfig{Allocator: mem, ChunkRows: 1})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: got %v, %v, want context.Canceled", f, b, err)
		}
	}
}

func TestDecodeBodyTooLarge(t *testing.T) {
	for _, f := range allFormats {
		_, _, err := decode(t, f, streamtest.Body(f, header, goodRows), testSchema(), stream.DecodeConfig{MaxBytes: 20})
		if !errors.Is(err, stream.ErrBodyTooLarge) {
			t.Errorf("%s: got %v, want ErrBodyTooLarge", f, err)
		}
	}
}

func TestDecodeConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  stream.DecodeConfig
		ok   bool
	}{
		{"zero", stream.DecodeConfig{}, true},
		{"default", stream.DefaultDecodeConfig(), true},
		{"negative chunk", stream.DecodeConfig{ChunkRows: -1}, false},
		{"negative max rows", stream.DecodeConfig{MaxRows: -1}, false},
		{"negative max bytes", stream.DecodeConfig{MaxBytes: -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if got := err == nil; got != tc.ok {
				t.Errorf("got error %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, stream.ErrInvalidDecodeConfig) {
				t.Errorf("got %v, want it to wrap ErrInvalidDecodeConfig", err)
			}
		})
	}
	d := stream.DefaultDecodeConfig()
	if d.ChunkRows != stream.DefaultChunkRows || d.MaxBytes != stream.DefaultMaxBytes || d.Allocator == nil {
		t.Errorf("got defaults %+v, want chunk %d, max bytes %d, an allocator", d, stream.DefaultChunkRows, stream.DefaultMaxBytes)
	}
}

func TestDecodeUnsupportedFormat(t *testing.T) {
	_, err := stream.Decode(t.Context(), "yaml", strings.NewReader(""), testSchema(), stream.DecodeConfig{})
	if !errors.Is(err, stream.ErrUnsupportedFormat) {
		t.Errorf("got %v, want ErrUnsupportedFormat", err)
	}
}

// wantSyntax checks err is a *SyntaxError at line/column (0 = any) whose
// message contains msg.
func wantSyntax(t *testing.T, err error, f stream.Format, line, col int, fieldName, msg string) {
	t.Helper()
	var se *stream.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("got error %v, want *SyntaxError", err)
	}
	if se.Format != f || (line > 0 && se.Line != line) || (col > 0 && se.Column != col) || se.Field != fieldName || !strings.Contains(se.Msg, msg) {
		t.Errorf("got %#v, want format %s line %d column %d field %q msg containing %q", se, f, line, col, fieldName, msg)
	}
}

// record is a shortcut to build one arrow record for tests.
func record(t *testing.T, mem memory.Allocator, fields []arrow.Field, build func(b *array.RecordBuilder)) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(mem, arrow.NewSchema(fields, nil))
	defer b.Release()
	build(b)
	return b.NewRecordBatch()
}
