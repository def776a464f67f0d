package stream

import (
	"bytes"
	"context"
	"fmt"
	"io"
)

// ndjsonDecoder decodes newline-delimited JSON: one object per line (LF or
// CRLF), blank lines skipped. Members are matched like the JSON decoder's.
// An unparseable line refuses the whole body with a *SyntaxError naming
// that line. Row numbers count objects, not lines.
type ndjsonDecoder struct {
	maxBytes int64
}

func newNDJSONDecoderFromConfig(cfg DecodeConfig) decoder { return newNDJSONDecoder(cfg.MaxBytes) }

func newNDJSONDecoder(maxBytes int64) *ndjsonDecoder { return &ndjsonDecoder{maxBytes: maxBytes} }

func (d *ndjsonDecoder) decode(ctx context.Context, r io.Reader, rb *rowBuilder) error {
	return decodeWhole(ctx, r, d.maxBytes, rb, d.decodeBytes)
}

func (d *ndjsonDecoder) decodeBytes(ctx context.Context, body []byte, rb *rowBuilder) error {
	buf := trimBOM(body)
	p := &jsonParser{rb: rb}
	rb.hintRows(bytes.Count(buf, []byte{'\n'}) + 1)
	for pos, lineNo := 0, 1; pos < len(buf); lineNo++ {
		end := len(buf)
		if nl := bytes.IndexByte(buf[pos:], '\n'); nl >= 0 {
			end = pos + nl
		}
		line := buf[pos:end]
		pos = end + 1
		i := jsonWS(line, 0)
		if i == len(line) {
			continue // blank line
		}
		synErr := func(off int, msg string) error {
			return &SyntaxError{Format: NDJSON, Line: lineNo, Column: off + 1, Msg: msg}
		}
		if line[i] != '{' {
			return synErr(i, fmt.Sprintf("want a JSON object, got %s", tokenDesc(line, i)))
		}
		j, e := p.object(line, i)
		if e != nil {
			if e.off >= len(line) {
				e.msg = "unexpected end of line: " + e.msg
			}
			return synErr(e.off, e.msg)
		}
		if j = jsonWS(line, j); j != len(line) {
			return synErr(j, fmt.Sprintf("unexpected %s after the object (one object per line)", tokenDesc(line, j)))
		}
		if err := rb.endRow(ctx); err != nil {
			return err
		}
	}
	return nil
}
