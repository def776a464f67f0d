package stream

import (
	"bytes"
	"context"
	"fmt"
	"io"
)

// csvDecoder decodes RFC 4180 CSV: a header row naming the columns, then one
// record per line; fields may be quoted with '"' ("" inside a quoted field is
// one quote, and quoted fields may span lines); lines end in LF or CRLF; a
// leading UTF-8 BOM is skipped; blank lines are skipped. Columns are matched
// by header name (surrounding blanks trimmed), unknown columns are ignored.
//
// The body is read whole (bounded by MaxBytes) and scanned byte by byte;
// field values are views into the body, or into a per-row scratch buffer
// for quoted fields with "" escapes, so steady-state decoding does not
// allocate per row.
type csvDecoder struct {
	maxBytes int64
}

func newCSVDecoderFromConfig(cfg DecodeConfig) decoder { return newCSVDecoder(cfg.MaxBytes) }

func newCSVDecoder(maxBytes int64) *csvDecoder { return &csvDecoder{maxBytes: maxBytes} }

// csvSpecial marks the bytes that end an unquoted field or are illegal in it.
var csvSpecial = [256]bool{',': true, '\n': true, '\r': true, '"': true}

// csvScanner splits records. fields and scratch are reused between records.
type csvScanner struct {
	buf     []byte
	pos     int
	fields  [][]byte
	starts  []int // byte offset of each field, for header errors
	scratch []byte
}

// csvErr is a syntax problem at a byte offset.
type csvErr struct {
	off int
	msg string
}

// record scans one record starting at s.pos into s.fields.
func (s *csvScanner) record() *csvErr {
	buf, pos, n := s.buf, s.pos, len(s.buf)
	s.fields = s.fields[:0]
	s.starts = s.starts[:0]
	s.scratch = s.scratch[:0]
	for {
		s.starts = append(s.starts, pos)
		var f []byte
		if pos < n && buf[pos] == '"' {
			open := pos
			pos++
			start := len(s.scratch)
			plain := true
			segStart := pos
			for {
				q := bytes.IndexByte(buf[pos:], '"')
				if q < 0 {
					return &csvErr{off: open, msg: "quoted field is never closed"}
				}
				pos += q
				if pos+1 < n && buf[pos+1] == '"' {
					// "" escape: copy what we have and one quote into scratch.
					s.scratch = append(s.scratch, buf[segStart:pos+1]...)
					plain = false
					pos += 2
					segStart = pos
					continue
				}
				break
			}
			if plain {
				f = buf[segStart:pos]
			} else {
				s.scratch = append(s.scratch, buf[segStart:pos]...)
				f = s.scratch[start:len(s.scratch):len(s.scratch)]
			}
			pos++ // closing quote
			if pos < n {
				if c := buf[pos]; c != ',' && c != '\n' && c != '\r' {
					return &csvErr{off: pos, msg: fmt.Sprintf("unexpected %q after closing quote", c)}
				}
			}
		} else {
			start := pos
			for pos < n && !csvSpecial[buf[pos]] {
				pos++
			}
			if pos < n && buf[pos] == '"' {
				return &csvErr{off: pos, msg: `bare " in unquoted field (quote the field and double the quote)`}
			}
			f = buf[start:pos]
		}
		s.fields = append(s.fields, f)
		if pos >= n {
			s.pos = pos
			return nil
		}
		switch buf[pos] {
		case ',':
			pos++
			continue
		case '\r':
			pos++
			if pos < n && buf[pos] == '\n' {
				pos++
			}
		default: // '\n'
			pos++
		}
		s.pos = pos
		return nil
	}
}

// skipBlank skips empty lines; it reports whether data remains.
func (s *csvScanner) skipBlank() bool {
	for s.pos < len(s.buf) {
		switch s.buf[s.pos] {
		case '\n', '\r':
			s.pos++
		default:
			return true
		}
	}
	return false
}

func (d *csvDecoder) decode(ctx context.Context, r io.Reader, rb *rowBuilder) error {
	return decodeWhole(ctx, r, d.maxBytes, rb, d.decodeBytes)
}

func (d *csvDecoder) decodeBytes(ctx context.Context, body []byte, rb *rowBuilder) error {
	buf := trimBOM(body)
	synErr := func(off int, field, msg string) error {
		line, col := lineCol(buf, off)
		return &SyntaxError{Format: CSV, Line: line, Column: col, Field: field, Msg: msg}
	}
	if len(bytes.TrimSpace(buf)) == 0 {
		return nil
	}
	s := &csvScanner{buf: buf}
	s.skipBlank()
	// Header.
	if e := s.record(); e != nil {
		return synErr(e.off, "", e.msg)
	}
	colOf := make([]int, len(s.fields))
	seen := make(map[string]int, len(s.fields))
	empty := true
	for i, f := range s.fields {
		name := string(trimSpace(f))
		colOf[i] = -1
		if name == "" {
			continue
		}
		empty = false
		if _, dup := seen[name]; dup {
			return synErr(s.starts[i], name, fmt.Sprintf("duplicate column %q in header", name))
		}
		seen[name] = i
		colOf[i] = rb.column([]byte(name))
	}
	if empty {
		return synErr(0, "", "empty header: want a header row naming the columns")
	}
	for _, c := range rb.cols {
		if _, ok := seen[c.name]; !ok && c.required {
			return &SyntaxError{Format: CSV, Line: 1, Field: c.name, Msg: fmt.Sprintf("header is missing required column %q", c.name)}
		}
	}
	nHeader := len(s.fields)
	rb.hintRows(bytes.Count(buf[s.pos:], []byte{'\n'}) + 1)
	// Data rows.
	for s.skipBlank() {
		if e := s.record(); e != nil {
			return synErr(e.off, "", e.msg)
		}
		for i, f := range s.fields {
			if i >= nHeader {
				break
			}
			if c := colOf[i]; c >= 0 {
				rb.vals[c] = field{b: f, kind: fText}
			}
		}
		if len(s.fields) != nHeader {
			if err := rb.rejectRow(fmt.Sprintf("want %d fields, got %d", nHeader, len(s.fields))); err != nil {
				return err
			}
			continue
		}
		if err := rb.endRow(ctx); err != nil {
			return err
		}
	}
	return nil
}
