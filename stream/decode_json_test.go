package stream_test

import (
	"slices"
	"testing"

	"github.com/demandflow/demandflow/stream"
)

func TestJSONSyntax(t *testing.T) {
	s := testSchema()
	tests := []struct {
		name      string
		body      string
		line, col int
		msg       string
	}{
		{"object not array", `{"qty":1}`, 1, 1, "want an array of objects"},
		{"array of numbers", "[\n  1]", 2, 3, "array element 1 is not an object"},
		{"trailing comma", `[{"qty":1},]`, 1, 12, "array element 2 is not an object"},
		{"unclosed array", `[{"qty":1}`, 1, 11, "unexpected end of input"},
		{"data after array", "[]\n[]", 2, 1, "after the top-level array"},
		{"bad syntax inside", "[\n{\"qty\":1},\n{\"qty\" 2}]", 3, 8, "want ':'"},
		{"deep nesting", `[{"a":` + string(make([]byte, 0)) + deep(600) + `}]`, 0, 0, "nesting too deep"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decode(t, stream.JSON, []byte(tc.body), s, stream.DecodeConfig{})
			wantSyntax(t, err, stream.JSON, tc.line, tc.col, "", tc.msg)
		})
	}
}

func deep(n int) string {
	b := make([]byte, 0, 2*n)
	for range n {
		b = append(b, '[')
	}
	for range n {
		b = append(b, ']')
	}
	return string(b)
}

func TestJSONEmptyArray(t *testing.T) {
	for _, body := range []string{"[]", " [ ] \n", "\xEF\xBB\xBF[]"} {
		got, rej, err := decode(t, stream.JSON, []byte(body), testSchema(), stream.DecodeConfig{})
		if err != nil || len(got) != 0 || len(rej) != 0 {
			t.Errorf("%q: got %v, %v, %v, want empty batch", body, got, rej, err)
		}
	}
}

func TestJSONMembersByName(t *testing.T) {
	body := `[{"qty":1,"region":"EU-DE","product":"P1","period":"2024-01-31"},
	{"period":"2024-02","product":"P2","region":"EU-FR","qty":2,"qty":5},
	{"object_id":"o-3","period":"2024-03","region":"EU-FR","qty":3}]`
	want := []string{"1|2024-01|P1|EU-DE|1|(null)|(null)", "2|2024-02|P2|EU-FR|5|(null)|(null)"}
	wantRej := []stream.RowError{{Row: 3, ObjectID: "o-3", Field: "product", Reason: "missing"}}
	got, rej, err := decode(t, stream.JSON, []byte(body), testSchema(), stream.DecodeConfig{})
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if !slices.Equal(got, want) || !slices.Equal(rej, wantRej) {
		t.Errorf("got %q %+v, want %q %+v", got, rej, want, wantRej)
	}
}
