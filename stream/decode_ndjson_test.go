package stream_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/demandflow/demandflow/stream"
)

func TestNDJSONSyntax(t *testing.T) {
	s := testSchema()
	ok := `{"period":"2024-01","product":"P1","region":"EU-DE","qty":1}` + "\n"
	tests := []struct {
		name      string
		body      string
		line, col int
		msg       string
	}{
		{"truncated object", ok + `{"period":"2024-01"` + "\n" + ok, 2, 20, "unexpected end of line"},
		{"not an object", ok + "\n[1,2]\n", 3, 1, "want a JSON object"},
		{"two objects on a line", ok + `{"qty":1} {"qty":2}` + "\n", 2, 11, "after the object"},
		{"bad literal", `{"qty":tru}`, 1, 8, "want true"},
		{"bad number", `{"qty":01}`, 1, 9, "want ',' or '}'"},
		{"bad escape", `{"product":"a\x"}`, 1, 14, "invalid escape"},
		{"control char", "{\"product\":\"a\tb\"}", 1, 14, "control character"},
		{"missing colon", `{"qty" 1}`, 1, 8, "want ':'"},
		{"unclosed nested", `{"x":{"a":[1,2}}`, 1, 15, "want ','"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decode(t, stream.NDJSON, []byte(tc.body), s, stream.DecodeConfig{})
			wantSyntax(t, err, stream.NDJSON, tc.line, tc.col, "", tc.msg)
		})
	}
}

func TestNDJSONValues(t *testing.T) {
	s := testSchema()
	body := "\r\n" +
		`{"period":"2024-01","product":12,"region":"EU-DE","qty":"3","price":null,"object_id":"o-1","extra":{"a":[1,{"b":null}]}}` + "\r\n" +
		"   \n" +
		`{"qty":2.5e1,"region":"EU-FR","product":true,"period":2024,"object_id":7}` + "\n" +
		`{"period":"2024-01","product":"\u00e9\ud83d\ude00\"","region":"EU-DE","qty":1}` + "\n" +
		`{"period":"2024-01","product":["x"],"region":"EU-DE","qty":1,"object_id":"o-4"}` + "\n" +
		`{"period":"2024-01","product":"P","region":"EU-DE","qty":{},"object_id":"o-5"}` + "\n" +
		`{"period":"2024-01","product":"P","region":"EU-DE","qty":true}` + "\n" +
		`{"period":"2024-01","product":null,"region":"EU-DE","qty":1}`
	want := []string{
		"1|2024-01|12|EU-DE|3|(null)|o-1",
		"2|2024-01|true|EU-FR|25|(null)|7",
		"3|2024-01|é😀\"|EU-DE|1|(null)|(null)",
	}
	wantRej := []stream.RowError{
		{Row: 4, ObjectID: "o-4", Field: "product", Reason: "want a string, got an array"},
		{Row: 5, ObjectID: "o-5", Field: "qty", Reason: "not a number: an object"},
		{Row: 6, Field: "qty", Reason: "not a number: true"},
		{Row: 7, Field: "product", Reason: "missing"},
	}
	got, rej, err := decode(t, stream.NDJSON, []byte(body), s, stream.DecodeConfig{})
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("got rows %q, want %q", got, want)
	}
	if !slices.Equal(rej, wantRej) {
		t.Errorf("got rejected %+v, want %+v", rej, wantRej)
	}
}

func FuzzNDJSON(f *testing.F) {
	for _, seed := range []string{
		`{"period":"2024-01","product":"P1","region":"EU-DE","qty":1,"price":"2","object_id":"o"}` + "\n",
		`{"period":"2024-W01","product":"\u00e9","region":"EU-FR","qty":-0.5e-3,"x":[{"a":[]}]}`,
		`{"period":"2024-01","qty":NaN}` + "\n\n" + `{"a":"\ud800"}`,
		`[{"a":1}]`,
		`{"a":[[[[[[[[[[[[[[[[[[`,
		"",
	} {
		f.Add([]byte(seed))
	}
	s := testSchema()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, format := range []stream.Format{stream.NDJSON, stream.JSON} {
			b, err := stream.Decode(t.Context(), format, bytes.NewReader(body), s, stream.DecodeConfig{ChunkRows: 3})
			if err == nil {
				b.Release()
			}
		}
	})
}
