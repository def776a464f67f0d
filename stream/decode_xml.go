package stream

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// xmlDecoder decodes an XML document whose root element (any name) holds one
// child element (any name) per record. A record's fields are either its
// child elements, named like the columns and holding the value as text, or
// its attributes, or both mixed:
//
//	<rows>
//	  <record><period>2024-01</period><product>P1</product><qty>3</qty></record>
//	  <record period="2024-01" product="P1" qty="3"/>
//	</rows>
//
// Names are matched on their local part (namespace prefixes are ignored);
// unknown fields are ignored; an empty field is missing; text directly
// inside the root or a record is ignored. The document is streamed with
// encoding/xml (no speed target); a document that is not well-formed, or has
// more than one root element, is refused with a *SyntaxError.
type xmlDecoder struct {
	maxBytes int64
}

func newXMLDecoderFromConfig(cfg DecodeConfig) decoder { return newXMLDecoder(cfg.MaxBytes) }

func newXMLDecoder(maxBytes int64) *xmlDecoder { return &xmlDecoder{maxBytes: maxBytes} }

// limitedReader counts bytes and fails past a limit. Readers wrapping it
// may swallow or rewrap its error, so err keeps it for the decoder to
// check first.
type limitedReader struct {
	r   io.Reader
	n   int64
	max int64
	err error
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.max {
		l.err = fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, l.max)
		return n, l.err
	}
	return n, err
}

func (d *xmlDecoder) decode(ctx context.Context, r io.Reader, rb *rowBuilder) error {
	lr := &limitedReader{r: r, max: d.maxBytes}
	defer func() { rb.batch.Bytes = lr.n }()
	dec := xml.NewDecoder(lr)
	synErr := func(msg string) error {
		line, col := dec.InputPos()
		return &SyntaxError{Format: XML, Line: line, Column: col, Msg: msg}
	}
	var (
		depth    int
		rootSeen bool
		fieldCol = -1 // column of the field element being read (depth 2)
		arena    []byte
		text     []byte
	)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if depth != 0 {
				return synErr("unexpected end of document")
			}
			return nil
		}
		if err != nil {
			if lr.err != nil {
				return lr.err
			}
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				_, col := dec.InputPos()
				return &SyntaxError{Format: XML, Line: se.Line, Column: col, Msg: se.Msg}
			}
			return synErr(err.Error())
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch depth {
			case 1:
				if rootSeen {
					return synErr(fmt.Sprintf("second root element <%s>: want one root element", t.Name.Local))
				}
				rootSeen = true
			case 2: // a record
				arena = arena[:0]
				for _, a := range t.Attr {
					if c := rb.column([]byte(a.Name.Local)); c >= 0 {
						start := len(arena)
						arena = append(arena, a.Value...)
						rb.vals[c] = field{b: arena[start:len(arena):len(arena)], kind: fText}
					}
				}
			case 3: // a field
				fieldCol = rb.column([]byte(t.Name.Local))
				text = text[:0]
			}
		case xml.CharData:
			if depth >= 3 && fieldCol >= 0 {
				text = append(text, t...)
			}
		case xml.EndElement:
			switch depth {
			case 3:
				if fieldCol >= 0 {
					start := len(arena)
					arena = append(arena, text...)
					rb.vals[fieldCol] = field{b: arena[start:len(arena):len(arena)], kind: fText}
				}
				fieldCol = -1
			case 2:
				if err := rb.endRow(ctx); err != nil {
					return err
				}
			}
			depth--
		case xml.Directive:
			// A DOCTYPE is tolerated but its entities are not expanded.
		}
	}
}
