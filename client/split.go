package client

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// batch is one request body cut from the input.
type batch struct {
	seq      int64
	firstRow int64 // 1-based input row of the body's first record
	rows     int
	body     []byte
	// offs[i] is where record i starts in body, when the format keeps
	// records as text (CSV, NDJSON, JSON, XML); nil for Arrow. The record
	// ends where the next starts (or at end, before the closing bracket).
	offs []int
	end  int // end of the last record in body
}

// record returns the text of record i (0-based), without its trailing
// newline; "" when unknown.
func (b *batch) record(i int) string {
	if i < 0 || i >= len(b.offs) {
		return ""
	}
	end := b.end
	if i+1 < len(b.offs) {
		end = b.offs[i+1]
	}
	r := bytes.TrimRight(b.body[b.offs[i]:end], "\r\n")
	if len(r) > 0 && r[len(r)-1] == ',' && b.body[0] == '[' {
		r = r[:len(r)-1] // JSON array separator
	}
	return string(r)
}

// splitter cuts an input stream into batches of whole records.
type splitter interface {
	// fill appends up to maxRows records (and at most about maxBytes) to b
	// and returns io.EOF when the input is exhausted and b got no rows.
	fill(b *batch, maxRows, maxBytes int) error
}

func newSplitter(f Format, r io.Reader) (splitter, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	switch f {
	case FormatCSV:
		return &lineSplitter{br: br, csv: true}, nil
	case FormatNDJSON:
		return &lineSplitter{br: br}, nil
	case FormatJSON:
		return &jsonSplitter{dec: json.NewDecoder(br)}, nil
	case FormatXML:
		return &xmlSplitter{dec: xml.NewDecoder(br)}, nil
	case FormatArrow:
		return &arrowSplitter{br: br}, nil
	}
	return nil, fmt.Errorf("client: unknown format %q", f)
}

// lineSplitter splits NDJSON on newlines and CSV on record ends (a newline
// outside double quotes, so quoted fields may hold newlines). Blank lines
// are dropped, as the server skips them, so row numbers stay aligned. For
// CSV the first record is the header and starts every batch.
type lineSplitter struct {
	br     *bufio.Reader
	csv    bool
	header []byte // CSV header record, with its newline
	eof    bool
}

// readRecord appends one record (with a trailing newline) to dst.
func (s *lineSplitter) readRecord(dst []byte) ([]byte, error) {
	start := len(dst)
	inQuote := false
	for {
		line, err := s.br.ReadSlice('\n')
		dst = append(dst, line...)
		if s.csv {
			for _, c := range line {
				if c == '"' {
					inQuote = !inQuote
				}
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			s.eof = true
			if len(dst) == start {
				return dst, io.EOF
			}
			return append(dst, '\n'), nil
		case err != nil:
			return dst[:start], err
		}
		if !inQuote {
			return dst, nil
		}
	}
}

func (s *lineSplitter) blank(rec []byte) bool {
	if s.csv {
		return len(bytes.Trim(rec, "\r\n")) == 0
	}
	return len(bytes.TrimLeft(rec, " \t\r\n")) == 0
}

func (s *lineSplitter) fill(b *batch, maxRows, maxBytes int) error {
	if s.csv && s.header == nil {
		for s.header == nil {
			h, err := s.readRecord(nil)
			if err == io.EOF {
				return io.EOF
			}
			if err != nil {
				return err
			}
			if !s.blank(h) {
				s.header = h
			}
		}
	}
	b.body = append(b.body, s.header...)
	for b.rows < maxRows && len(b.body) < maxBytes && !s.eof {
		start := len(b.body)
		var err error
		b.body, err = s.readRecord(b.body)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if s.blank(b.body[start:]) {
			b.body = b.body[:start]
			continue
		}
		b.offs = append(b.offs, start)
		b.rows++
	}
	b.end = len(b.body)
	if b.rows == 0 {
		return io.EOF
	}
	return nil
}

// jsonSplitter splits a JSON array of records into smaller arrays.
type jsonSplitter struct {
	dec     *json.Decoder
	started bool
	done    bool
}

func (s *jsonSplitter) fill(b *batch, maxRows, maxBytes int) error {
	if s.done {
		return io.EOF
	}
	if !s.started {
		tok, err := s.dec.Token()
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return fmt.Errorf("json input: %w", err)
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return errors.New("json input: want an array of records (use the ndjson format for one object per line)")
		}
		s.started = true
	}
	b.body = append(b.body, '[')
	for b.rows < maxRows && len(b.body) < maxBytes {
		if !s.dec.More() {
			if _, err := s.dec.Token(); err != nil { // the closing ']'
				return fmt.Errorf("json input: %w", err)
			}
			s.done = true
			break
		}
		var raw json.RawMessage
		if err := s.dec.Decode(&raw); err != nil {
			return fmt.Errorf("json input: record %d: %w", b.firstRow+int64(b.rows), err)
		}
		if b.rows > 0 {
			b.body = append(b.body, ",\n"...)
		}
		b.offs = append(b.offs, len(b.body))
		b.body = append(b.body, raw...)
		b.rows++
	}
	b.end = len(b.body)
	b.body = append(b.body, "]\n"...)
	if b.rows == 0 {
		return io.EOF
	}
	return nil
}

// xmlSplitter splits an XML document whose root's children are records
// into documents with the same root element and fewer children. Tokens are
// re-encoded, so comments and processing instructions inside records are
// kept, the prolog is dropped, and namespace prefixes are kept literally
// (xmlns attributes of the root are repeated in every batch).
type xmlSplitter struct {
	dec  *xml.Decoder
	root *xml.StartElement
	done bool
}

// appendWriter appends to a byte slice.
type appendWriter struct{ b *[]byte }

func (w appendWriter) Write(p []byte) (int, error) {
	*w.b = append(*w.b, p...)
	return len(p), nil
}

// literal turns a raw (prefix, local) name into an unqualified name that
// the encoder writes back as "prefix:local".
func literal(n xml.Name) xml.Name {
	if n.Space != "" {
		return xml.Name{Local: n.Space + ":" + n.Local}
	}
	return n
}

func literalToken(t xml.Token) xml.Token {
	switch v := t.(type) {
	case xml.StartElement:
		v.Name = literal(v.Name)
		attrs := make([]xml.Attr, len(v.Attr))
		for i, a := range v.Attr {
			attrs[i] = xml.Attr{Name: literal(a.Name), Value: a.Value}
		}
		v.Attr = attrs
		return v
	case xml.EndElement:
		v.Name = literal(v.Name)
		return v
	}
	return t
}

func (s *xmlSplitter) fill(b *batch, maxRows, maxBytes int) error {
	if s.done {
		return io.EOF
	}
	for s.root == nil {
		tok, err := s.dec.RawToken()
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return fmt.Errorf("xml input: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			r := literalToken(se.Copy()).(xml.StartElement)
			s.root = &r
		}
	}
	enc := xml.NewEncoder(appendWriter{&b.body})
	if err := enc.EncodeToken(*s.root); err != nil {
		return fmt.Errorf("xml input: %w", err)
	}
	if err := enc.Flush(); err != nil {
		return err
	}
	b.body = append(b.body, '\n')
	depth := 0
	for {
		// Cut only between records; the encoder buffers, so body length
		// is checked after the per-record Flush.
		if depth == 0 && (b.rows >= maxRows || len(b.body) >= maxBytes) {
			break
		}
		tok, err := s.dec.RawToken()
		if err == io.EOF {
			return errors.New("xml input: unexpected end of document")
		}
		if err != nil {
			return fmt.Errorf("xml input: %w", err)
		}
		switch tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				b.offs = append(b.offs, len(b.body))
			}
			depth++
		case xml.EndElement:
			if depth == 0 { // the root ends
				s.done = true
			}
			depth--
		default:
			if depth == 0 {
				continue // whitespace, comments between records
			}
		}
		if s.done {
			break
		}
		if err := enc.EncodeToken(literalToken(xml.CopyToken(tok))); err != nil {
			return fmt.Errorf("xml input: record %d: %w", b.firstRow+int64(b.rows), err)
		}
		if depth == 0 {
			if err := enc.Flush(); err != nil {
				return err
			}
			b.body = append(b.body, '\n')
			b.rows++
		}
	}
	if err := enc.Flush(); err != nil {
		return err
	}
	b.end = len(b.body)
	b.body = append(b.body, "</"...)
	b.body = append(b.body, s.root.Name.Local...)
	b.body = append(b.body, ">\n"...)
	if b.rows == 0 {
		return io.EOF
	}
	return nil
}
