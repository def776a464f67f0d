package stream_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/demandflow/demandflow/stream"
)

func TestCSVSyntax(t *testing.T) {
	s := testSchema()
	hdr := "period,product,region,qty,price,object_id\n"
	tests := []struct {
		name      string
		body      string
		line, col int
		field     string
		msg       string
	}{
		{"bare quote", hdr + "2024-01,P\"1,EU-DE,1,,o\n", 2, 10, "", "bare \""},
		{"unclosed quote", hdr + "2024-01,\"P1,EU-DE,1,,o\n", 2, 9, "", "never closed"},
		{"text after quote", hdr + "2024-01,\"P1\"x,EU-DE,1,,o\n", 2, 13, "", "after closing quote"},
		{"missing column", "period,product,qty,price\n2024-01,P1,1,2\n", 1, 0, "region", `missing required column "region"`},
		{"duplicate column", "period,product,region,qty,product\n", 1, 27, "product", "duplicate column"},
		{"empty header", ",,\n1,2,3\n", 1, 1, "", "empty header"},
		{"error on third line after multi-line field", hdr + "2024-01,\"P\n1\",EU-DE,1,,o\n2024-01,P\"1,EU-DE,1,,o\n", 4, 10, "", "bare \""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decode(t, stream.CSV, []byte(tc.body), s, stream.DecodeConfig{})
			wantSyntax(t, err, stream.CSV, tc.line, tc.col, tc.field, tc.msg)
		})
	}
}

func TestCSVDialect(t *testing.T) {
	s := testSchema()
	tests := []struct {
		name string
		body string
		want []string
		rej  []stream.RowError
	}{
		{
			name: "BOM, CRLF, reordered and extra columns, blank lines",
			body: "\xEF\xBB\xBFextra,qty,object_id,region,product,period\r\nx,3,o-1,EU-DE,P1,2024-01\r\n\r\ny,4,,EU-FR,P2,2024-02\r\n",
			want: []string{"1|2024-01|P1|EU-DE|3|(null)|o-1", "2|2024-02|P2|EU-FR|4|(null)|(null)"},
		},
		{
			name: "quoted fields with escapes and newlines, no final newline",
			body: "period,product,region,qty\n\"2024-01\",\"a \"\"b\"\"\nc\",EU-DE,\"1\"",
			want: []string{"1|2024-01|a \"b\"\nc|EU-DE|1|(null)|(null)"},
		},
		{
			name: "wrong field count is a row error",
			body: "period,product,region,qty,object_id\n2024-01,P1,EU-DE,1,o-1,extra\n2024-01,P1\n2024-01,P1,EU-DE,2,o-3\n",
			want: []string{"3|2024-01|P1|EU-DE|2|(null)|o-3"},
			rej: []stream.RowError{
				{Row: 1, ObjectID: "o-1", Reason: "want 5 fields, got 6"},
				{Row: 2, Reason: "want 5 fields, got 2"},
			},
		},
		{
			name: "header only",
			body: "period,product,region,qty\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, rej, err := decode(t, stream.CSV, []byte(tc.body), s, stream.DecodeConfig{})
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got rows %q, want %q", got, tc.want)
			}
			if !slices.Equal(rej, tc.rej) {
				t.Errorf("got rejected %+v, want %+v", rej, tc.rej)
			}
		})
	}
}

func TestCSVLargeBody(t *testing.T) {
	// More rows than one chunk and than the first buffer read.
	var b strings.Builder
	b.WriteString("period,product,region,qty\n")
	for i := 0; i < 3000; i++ {
		b.WriteString("2024-01,P1,EU-DE,1\n")
	}
	got, rej, err := decode(t, stream.CSV, []byte(b.String()), testSchema(), stream.DecodeConfig{ChunkRows: 1000})
	if err != nil || len(got) != 3000 || len(rej) != 0 {
		t.Fatalf("got %d rows, %d rejected, %v; want 3000, 0, nil", len(got), len(rej), err)
	}
	if got[2999] != "3000|2024-01|P1|EU-DE|1|(null)|(null)" {
		t.Errorf("got last row %q", got[2999])
	}
}

func FuzzCSV(f *testing.F) {
	for _, seed := range []string{
		"period,product,region,qty,price,object_id\n2024-01,P1,EU-DE,3,1.5,o\n",
		"period,product,region,qty\n\"2024-01\",\"a\"\"b\",EU-FR,1e3\r\n",
		"period,product,region,qty\n2024-W53,\"x\ny\",EU-DE,NaN\n,,,\n",
		"\xEF\xBB\xBFperiod,qty\n\"",
		"a,a\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	s := testSchema()
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := stream.Decode(t.Context(), stream.CSV, bytes.NewReader(body), s, stream.DecodeConfig{ChunkRows: 3})
		if err == nil {
			b.Release()
		}
	})
}
