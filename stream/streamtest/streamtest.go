// Package streamtest builds request bodies for tests of code that decodes
// them with package stream, like net/http/httptest does for HTTP.
package streamtest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/demandflow/demandflow/stream"
)

// Body returns a request body in format f holding rows under the column
// names in header. Every value is written as text:
//
//   - CSV: a header row, then one line per row (quoted where needed, LF);
//   - NDJSON / JSON: one object per row with string members (an array for
//     JSON); a row shorter than header omits the missing members;
//   - XML: <rows><row><col>value</col>...</row>...</rows>;
//   - Arrow: an IPC stream of one record with nullable utf8 columns (null
//     where a row is short).
//
// A row longer than header is written as is for CSV (to test field-count
// errors) and truncated for the other formats. Body panics on an unknown
// format; it is meant for tests only.
func Body(f stream.Format, header []string, rows [][]string) []byte {
	var buf bytes.Buffer
	switch f {
	case stream.CSV:
		writeCSVLine(&buf, header)
		for _, r := range rows {
			writeCSVLine(&buf, r)
		}
	case stream.NDJSON:
		for _, r := range rows {
			buf.Write(object(header, r))
			buf.WriteByte('\n')
		}
	case stream.JSON:
		buf.WriteByte('[')
		for i, r := range rows {
			if i > 0 {
				buf.WriteString(",\n")
			}
			buf.Write(object(header, r))
		}
		buf.WriteByte(']')
	case stream.XML:
		buf.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rows>\n")
		for _, r := range rows {
			buf.WriteString("  <row>")
			for i, v := range r {
				if i >= len(header) {
					break
				}
				fmt.Fprintf(&buf, "<%s>", header[i])
				_ = xml.EscapeText(&buf, []byte(v))
				fmt.Fprintf(&buf, "</%s>", header[i])
			}
			buf.WriteString("</row>\n")
		}
		buf.WriteString("</rows>\n")
	case stream.Arrow:
		writeArrow(&buf, header, rows)
	default:
		panic(fmt.Sprintf("streamtest: unknown format %q", f))
	}
	return buf.Bytes()
}

func writeCSVLine(buf *bytes.Buffer, fields []string) {
	for i, v := range fields {
		if i > 0 {
			buf.WriteByte(',')
		}
		if strings.ContainsAny(v, ",\"\r\n") || (i == 0 && len(fields) == 1 && v == "") {
			buf.WriteByte('"')
			buf.WriteString(strings.ReplaceAll(v, `"`, `""`))
			buf.WriteByte('"')
			continue
		}
		buf.WriteString(v)
	}
	buf.WriteByte('\n')
}

func object(header, row []string) []byte {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, v := range row {
		if i >= len(header) {
			break
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(header[i])
		s, _ := json.Marshal(v)
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(s)
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

func writeArrow(buf *bytes.Buffer, header []string, rows [][]string) {
	mem := memory.DefaultAllocator
	fields := make([]arrow.Field, len(header))
	for i, h := range header {
		fields[i] = arrow.Field{Name: h, Type: arrow.BinaryTypes.String, Nullable: true}
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for _, r := range rows {
		for i := range header {
			sb := b.Field(i).(*array.StringBuilder)
			if i < len(r) {
				sb.Append(r[i])
			} else {
				sb.AppendNull()
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	w := ipc.NewWriter(buf, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	if err := w.Write(rec); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
}
