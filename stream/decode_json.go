package stream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonDecoder decodes a JSON body that is one top-level array of objects;
// each object is one row, its members are matched to columns by name and
// unknown members are ignored. Numeric columns take JSON numbers or numeric
// strings; dimension and object-id columns take strings, numbers or booleans
// (their JSON text); null means missing.
//
// The body is read whole (bounded by MaxBytes) and scanned by a hand-written
// validating JSON scanner (jsonParser); encoding/json is not used because it
// allocates per value.
type jsonDecoder struct {
	maxBytes int64
}

func newJSONDecoderFromConfig(cfg DecodeConfig) decoder { return newJSONDecoder(cfg.MaxBytes) }

func newJSONDecoder(maxBytes int64) *jsonDecoder { return &jsonDecoder{maxBytes: maxBytes} }

func (d *jsonDecoder) decode(ctx context.Context, r io.Reader, rb *rowBuilder) error {
	return decodeWhole(ctx, r, d.maxBytes, rb, d.decodeBytes)
}

func (d *jsonDecoder) decodeBytes(ctx context.Context, body []byte, rb *rowBuilder) error {
	buf := trimBOM(body)
	synErr := func(off int, msg string) error {
		line, col := lineCol(buf, off)
		return &SyntaxError{Format: JSON, Line: line, Column: col, Msg: msg}
	}
	p := &jsonParser{rb: rb}
	n := len(buf)
	i := jsonWS(buf, 0)
	if i == n {
		return nil
	}
	if buf[i] != '[' {
		return synErr(i, fmt.Sprintf("want an array of objects, got %s", tokenDesc(buf, i)))
	}
	rb.hintRows(n / 48)
	i = jsonWS(buf, i+1)
	if i < n && buf[i] == ']' {
		i++
	} else {
		for elem := 1; ; elem++ {
			if i >= n {
				return synErr(i, "unexpected end of input in array")
			}
			if buf[i] != '{' {
				return synErr(i, fmt.Sprintf("array element %d is not an object (got %s)", elem, tokenDesc(buf, i)))
			}
			j, e := p.object(buf, i)
			if e != nil {
				return synErr(e.off, e.msg)
			}
			if err := rb.endRow(ctx); err != nil {
				return err
			}
			i = jsonWS(buf, j)
			if i >= n {
				return synErr(i, "unexpected end of input in array")
			}
			if buf[i] == ']' {
				i++
				break
			}
			if buf[i] != ',' {
				return synErr(i, fmt.Sprintf("want ',' or ']' after array element, got %s", tokenDesc(buf, i)))
			}
			i = jsonWS(buf, i+1)
		}
	}
	if i = jsonWS(buf, i); i != n {
		return synErr(i, fmt.Sprintf("unexpected %s after the top-level array", tokenDesc(buf, i)))
	}
	return nil
}

// jsonMaxDepth bounds the nesting of skipped values, so hostile input cannot
// exhaust the stack.
const jsonMaxDepth = 512

// jsonParser scans JSON objects into a rowBuilder's fields. scratch holds
// unescaped strings of the current object; keys caches the column of each
// member position, since consecutive objects usually list their members in
// the same order.
type jsonParser struct {
	rb      *rowBuilder
	scratch []byte
	keys    []keySlot
}

type keySlot struct {
	name string
	col  int
}

// jsonErr is a syntax problem at a byte offset of the scanned buffer.
type jsonErr struct {
	off int
	msg string
}

func jsonWS(buf []byte, i int) int {
	for i < len(buf) {
		switch buf[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// tokenDesc describes the input at i for an error message.
func tokenDesc(buf []byte, i int) string {
	if i >= len(buf) {
		return "end of input"
	}
	r, _ := utf8.DecodeRune(buf[i:])
	return fmt.Sprintf("%q", r)
}

func (p *jsonParser) lookup(k int, key []byte) int {
	if k < len(p.keys) && p.keys[k].name == string(key) {
		return p.keys[k].col
	}
	col := p.rb.column(key)
	switch {
	case k < len(p.keys):
		p.keys[k] = keySlot{name: string(key), col: col}
	case k == len(p.keys) && k < 256:
		p.keys = append(p.keys, keySlot{name: string(key), col: col})
	}
	return col
}

// object parses the object starting at buf[i] == '{' into the row's fields
// and returns the offset after its '}'.
func (p *jsonParser) object(buf []byte, i int) (int, *jsonErr) {
	p.scratch = p.scratch[:0]
	vals := p.rb.vals
	n := len(buf)
	i = jsonWS(buf, i+1)
	if i < n && buf[i] == '}' {
		return i + 1, nil
	}
	for k := 0; ; k++ {
		if i >= n {
			return i, &jsonErr{i, "unexpected end of input in object"}
		}
		if buf[i] != '"' {
			return i, &jsonErr{i, fmt.Sprintf("want a string member name, got %s", tokenDesc(buf, i))}
		}
		key, j, e := p.str(buf, i)
		if e != nil {
			return i, e
		}
		col := p.lookup(k, key)
		i = jsonWS(buf, j)
		if i >= n || buf[i] != ':' {
			return i, &jsonErr{i, fmt.Sprintf("want ':' after member name, got %s", tokenDesc(buf, i))}
		}
		i = jsonWS(buf, i+1)
		f, j, e := p.value(buf, i, 0)
		if e != nil {
			return i, e
		}
		if col >= 0 {
			vals[col] = f
		}
		i = jsonWS(buf, j)
		if i >= n {
			return i, &jsonErr{i, "unexpected end of input in object"}
		}
		switch buf[i] {
		case ',':
			i = jsonWS(buf, i+1)
		case '}':
			return i + 1, nil
		default:
			return i, &jsonErr{i, fmt.Sprintf("want ',' or '}' after object member, got %s", tokenDesc(buf, i))}
		}
	}
}

// value parses any JSON value at buf[i]. Objects and arrays are validated
// and returned as fComposite with their raw text.
func (p *jsonParser) value(buf []byte, i, depth int) (field, int, *jsonErr) {
	if i >= len(buf) {
		return field{}, i, &jsonErr{i, "unexpected end of input, want a value"}
	}
	switch c := buf[i]; c {
	case '"':
		s, j, e := p.str(buf, i)
		return field{b: s, kind: fText}, j, e
	case 't':
		return p.literal(buf, i, "true", fBool)
	case 'f':
		return p.literal(buf, i, "false", fBool)
	case 'n':
		return p.literal(buf, i, "null", fMissing)
	case '{', '[':
		j, e := p.skip(buf, i, depth+1)
		return field{b: buf[i:j], kind: fComposite}, j, e
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			j, e := jsonNumber(buf, i)
			return field{b: buf[i:j], kind: fNumber}, j, e
		}
		return field{}, i, &jsonErr{i, fmt.Sprintf("invalid character %s, want a value", tokenDesc(buf, i))}
	}
}

func (p *jsonParser) literal(buf []byte, i int, lit string, k fieldKind) (field, int, *jsonErr) {
	if !bytes.HasPrefix(buf[i:], []byte(lit)) {
		return field{}, i, &jsonErr{i, fmt.Sprintf("invalid literal, want %s", lit)}
	}
	if k == fMissing {
		return field{}, i + len(lit), nil
	}
	return field{b: buf[i : i+len(lit)], kind: k}, i + len(lit), nil
}

// skip validates the object or array at buf[i] and returns the offset after it.
func (p *jsonParser) skip(buf []byte, i, depth int) (int, *jsonErr) {
	if depth > jsonMaxDepth {
		return i, &jsonErr{i, "nesting too deep"}
	}
	n := len(buf)
	open := buf[i]
	close := byte('}')
	if open == '[' {
		close = ']'
	}
	i = jsonWS(buf, i+1)
	if i < n && buf[i] == close {
		return i + 1, nil
	}
	for {
		if open == '{' {
			if i >= n || buf[i] != '"' {
				return i, &jsonErr{i, fmt.Sprintf("want a string member name, got %s", tokenDesc(buf, i))}
			}
			_, j, e := p.str(buf, i)
			if e != nil {
				return i, e
			}
			i = jsonWS(buf, j)
			if i >= n || buf[i] != ':' {
				return i, &jsonErr{i, fmt.Sprintf("want ':' after member name, got %s", tokenDesc(buf, i))}
			}
			i = jsonWS(buf, i+1)
		}
		_, j, e := p.value(buf, i, depth)
		if e != nil {
			return i, e
		}
		i = jsonWS(buf, j)
		if i >= n {
			return i, &jsonErr{i, "unexpected end of input"}
		}
		if buf[i] == close {
			return i + 1, nil
		}
		if buf[i] != ',' {
			return i, &jsonErr{i, fmt.Sprintf("want ',' or %q, got %s", close, tokenDesc(buf, i))}
		}
		i = jsonWS(buf, i+1)
	}
}

// jsonNumber checks the JSON number grammar at buf[i] and returns its end.
func jsonNumber(buf []byte, i int) (int, *jsonErr) {
	n, j := len(buf), i
	digit := func(k int) bool { return k < n && buf[k] >= '0' && buf[k] <= '9' }
	if buf[j] == '-' {
		j++
	}
	switch {
	case !digit(j):
		return j, &jsonErr{j, "invalid number"}
	case buf[j] == '0':
		j++
	default:
		for digit(j) {
			j++
		}
	}
	if j < n && buf[j] == '.' {
		j++
		if !digit(j) {
			return j, &jsonErr{j, "invalid number: want a digit after '.'"}
		}
		for digit(j) {
			j++
		}
	}
	if j < n && (buf[j] == 'e' || buf[j] == 'E') {
		j++
		if j < n && (buf[j] == '+' || buf[j] == '-') {
			j++
		}
		if !digit(j) {
			return j, &jsonErr{j, "invalid number: want a digit in the exponent"}
		}
		for digit(j) {
			j++
		}
	}
	return j, nil
}

// str parses the string at buf[i] == '"'. Without escapes the result is a
// view of buf; otherwise it is unescaped into p.scratch (valid until the
// next object).
func (p *jsonParser) str(buf []byte, i int) ([]byte, int, *jsonErr) {
	n := len(buf)
	j := i + 1
	for j < n && !jsonStrSpecial[buf[j]] {
		j++
	}
	if j < n && buf[j] == '"' {
		return buf[i+1 : j], j + 1, nil
	}
	start := len(p.scratch)
	p.scratch = append(p.scratch, buf[i+1:j]...)
	for j < n {
		c := buf[j]
		switch {
		case c == '"':
			end := len(p.scratch)
			return p.scratch[start:end:end], j + 1, nil
		case c < 0x20:
			return nil, j, &jsonErr{j, "control character in string"}
		case c == '\\':
			if j+1 >= n {
				return nil, j, &jsonErr{j, "string is never closed"}
			}
			switch e := buf[j+1]; e {
			case '"', '\\', '/':
				p.scratch = append(p.scratch, e)
			case 'b':
				p.scratch = append(p.scratch, '\b')
			case 'f':
				p.scratch = append(p.scratch, '\f')
			case 'n':
				p.scratch = append(p.scratch, '\n')
			case 'r':
				p.scratch = append(p.scratch, '\r')
			case 't':
				p.scratch = append(p.scratch, '\t')
			case 'u':
				r, ok := hex4(buf, j+2)
				if !ok {
					return nil, j, &jsonErr{j, `invalid \u escape`}
				}
				j += 6
				if utf16.IsSurrogate(r) {
					r2, ok2 := rune(-1), false
					if j+1 < n && buf[j] == '\\' && buf[j+1] == 'u' {
						r2, ok2 = hex4(buf, j+2)
					}
					if d := utf16.DecodeRune(r, r2); ok2 && d != utf8.RuneError {
						r = d
						j += 6
					} else {
						r = utf8.RuneError
					}
				}
				p.scratch = utf8.AppendRune(p.scratch, r)
				continue
			default:
				return nil, j, &jsonErr{j, fmt.Sprintf("invalid escape %q in string", "\\"+string(rune(e)))}
			}
			j += 2
		default:
			p.scratch = append(p.scratch, c)
			j++
		}
	}
	return nil, i, &jsonErr{i, "string is never closed"}
}

// jsonStrSpecial marks the bytes that end the fast scan of a string.
var jsonStrSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func hex4(buf []byte, i int) (rune, bool) {
	if i+4 > len(buf) {
		return 0, false
	}
	var r rune
	for _, c := range buf[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
