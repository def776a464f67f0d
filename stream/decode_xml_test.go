package stream_test

import (
	"slices"
	"testing"

	"github.com/demandflow/demandflow/stream"
)

func TestXMLRecords(t *testing.T) {
	body := `<?xml version="1.0"?>
<export xmlns:d="urn:x">
  <record><period>2024-01</period><product>P1</product><region>EU-DE</region><qty>3</qty><note>x<b>y</b></note></record>
  <record period="2024-02" product="P&amp;2" region="EU-FR" qty="4" object_id="o-2"/>
  <row period="2024-03" region="EU-DE"><d:product>P3</d:product><qty> 5 </qty><price></price></row>
  <record period="2024-04" product="P4" region="EU-XX" qty="1" object_id="o-4"/>
  text is ignored
</export>
`
	want := []string{
		"1|2024-01|P1|EU-DE|3|(null)|(null)",
		"2|2024-02|P&2|EU-FR|4|(null)|o-2",
		"3|2024-03|P3|EU-DE|5|(null)|(null)",
	}
	wantRej := []stream.RowError{{Row: 4, ObjectID: "o-4", Field: "region", Reason: `value "EU-XX" not allowed (want one of EU-DE, EU-FR)`}}
	got, rej, err := decode(t, stream.XML, []byte(body), testSchema(), stream.DecodeConfig{})
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if !slices.Equal(got, want) || !slices.Equal(rej, wantRej) {
		t.Errorf("got %q %+v, want %q %+v", got, rej, want, wantRej)
	}
}

func TestXMLSyntax(t *testing.T) {
	tests := []struct {
		name string
		body string
		line int
		msg  string
	}{
		{"mismatched tag", "<rows>\n<r><qty>1</qtx></r></rows>", 2, "element <qty> closed by </qtx>"},
		{"unclosed", "<rows>\n<r>", 2, "unexpected EOF"},
		{"two roots", "<a/>\n<b/>", 2, "second root element"},
		{"garbage", "<rows><r qty=1/></rows>", 1, "unquoted or missing attribute value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decode(t, stream.XML, []byte(tc.body), testSchema(), stream.DecodeConfig{})
			wantSyntax(t, err, stream.XML, tc.line, 0, "", tc.msg)
		})
	}
}
