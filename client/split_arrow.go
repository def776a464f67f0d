package client

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// arrowSplitter splits an Arrow IPC stream at record-batch boundaries
// without decoding any data (the client imports only the standard
// library): it reads each encapsulated message's framing and the few
// flatbuffer fields it needs (message type, body length, batch row count).
// Every batch body is the schema message, every dictionary message seen so
// far (so dictionary-encoded columns stay decodable), the record batch
// messages, and an end-of-stream marker.
//
// Encapsulated message layout (Arrow columnar format, "IPC Streaming
// Format"):
//
//	<0xFFFFFFFF> <int32 metadata size> <flatbuffer Message, padded> <body>
//
// Streams written before Arrow 0.15 omit the 0xFFFFFFFF continuation.
// A metadata size of 0 is the end of the stream.
type arrowSplitter struct {
	br     *bufio.Reader
	prefix []byte // schema + dictionary messages
	done   bool
}

// Message header types (Schema.fbs MessageHeader union).
const (
	arrowSchema          = 1
	arrowDictionaryBatch = 2
	arrowRecordBatch     = 3
)

// maxArrowMetadata bounds one message's flatbuffer metadata.
const maxArrowMetadata = 64 << 20

// readMessage returns one raw message (framing, metadata, body), its type
// and, for a record batch, its row count; io.EOF at the end of stream.
func (s *arrowSplitter) readMessage() (raw []byte, typ byte, rows int64, err error) {
	var hdr [8]byte
	if _, err := io.ReadFull(s.br, hdr[:4]); err != nil {
		if err == io.EOF {
			return nil, 0, 0, io.EOF
		}
		return nil, 0, 0, fmt.Errorf("arrow input: %w", err)
	}
	n := binary.LittleEndian.Uint32(hdr[:4])
	if n == 0xFFFFFFFF {
		if _, err := io.ReadFull(s.br, hdr[4:8]); err != nil {
			return nil, 0, 0, fmt.Errorf("arrow input: %w", err)
		}
		n = binary.LittleEndian.Uint32(hdr[4:8])
	}
	if n == 0 {
		return nil, 0, 0, io.EOF
	}
	if n > maxArrowMetadata {
		return nil, 0, 0, fmt.Errorf("arrow input: message metadata of %d bytes (not an Arrow IPC stream?)", n)
	}
	meta := make([]byte, n)
	if _, err := io.ReadFull(s.br, meta); err != nil {
		return nil, 0, 0, fmt.Errorf("arrow input: %w", err)
	}
	typ, bodyLen, rows, err := parseArrowMessage(meta)
	if err != nil {
		return nil, 0, 0, err
	}
	raw = make([]byte, 0, 8+len(meta)+int(bodyLen))
	raw = binary.LittleEndian.AppendUint32(raw, 0xFFFFFFFF)
	raw = binary.LittleEndian.AppendUint32(raw, n)
	raw = append(raw, meta...)
	raw = raw[:len(raw)+int(bodyLen)]
	if _, err := io.ReadFull(s.br, raw[8+len(meta):]); err != nil {
		return nil, 0, 0, fmt.Errorf("arrow input: message body: %w", err)
	}
	return raw, typ, rows, nil
}

// fbTable reads fields of a flatbuffer table.
type fbTable struct {
	buf []byte
	pos int
}

var errArrowMeta = errors.New("arrow input: malformed message metadata")

func (t fbTable) field(i int) (int, bool) {
	if t.pos < 0 || t.pos+4 > len(t.buf) {
		return 0, false
	}
	vt := t.pos - int(int32(binary.LittleEndian.Uint32(t.buf[t.pos:])))
	if vt < 0 || vt+4 > len(t.buf) {
		return 0, false
	}
	vtLen := int(binary.LittleEndian.Uint16(t.buf[vt:]))
	o := 4 + 2*i
	if o+2 > vtLen || vt+o+2 > len(t.buf) {
		return 0, false
	}
	off := int(binary.LittleEndian.Uint16(t.buf[vt+o:]))
	if off == 0 {
		return 0, false
	}
	return t.pos + off, true
}

func (t fbTable) int64At(i int) (int64, error) {
	p, ok := t.field(i)
	if !ok {
		return 0, nil
	}
	if p+8 > len(t.buf) {
		return 0, errArrowMeta
	}
	return int64(binary.LittleEndian.Uint64(t.buf[p:])), nil
}

func (t fbTable) table(i int) (fbTable, error) {
	p, ok := t.field(i)
	if !ok || p+4 > len(t.buf) {
		return fbTable{}, errArrowMeta
	}
	return fbTable{buf: t.buf, pos: p + int(binary.LittleEndian.Uint32(t.buf[p:]))}, nil
}

// parseArrowMessage reads Message.header_type, Message.bodyLength and, for
// a RecordBatch, RecordBatch.length.
func parseArrowMessage(meta []byte) (typ byte, bodyLen, rows int64, err error) {
	if len(meta) < 4 {
		return 0, 0, 0, errArrowMeta
	}
	msg := fbTable{buf: meta, pos: int(binary.LittleEndian.Uint32(meta))}
	if p, ok := msg.field(1); ok && p < len(meta) {
		typ = meta[p]
	}
	if bodyLen, err = msg.int64At(3); err != nil {
		return 0, 0, 0, err
	}
	if bodyLen < 0 || bodyLen > 1<<34 {
		return 0, 0, 0, fmt.Errorf("arrow input: message body of %d bytes", bodyLen)
	}
	if typ == arrowRecordBatch {
		rb, err := msg.table(2)
		if err != nil {
			return 0, 0, 0, err
		}
		if rows, err = rb.int64At(0); err != nil {
			return 0, 0, 0, err
		}
	}
	return typ, bodyLen, rows, nil
}

func (s *arrowSplitter) fill(b *batch, maxRows, maxBytes int) error {
	if s.done {
		return io.EOF
	}
	for s.prefix == nil {
		raw, typ, _, err := s.readMessage()
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return err
		}
		if typ != arrowSchema {
			return errors.New("arrow input: the stream does not start with a schema message (the Arrow IPC file format is not supported; use the stream format)")
		}
		s.prefix = raw
	}
	b.body = append(b.body, s.prefix...)
	for b.rows < maxRows && len(b.body) < maxBytes {
		raw, typ, rows, err := s.readMessage()
		if err == io.EOF {
			s.done = true
			break
		}
		if err != nil {
			return err
		}
		switch typ {
		case arrowRecordBatch:
			b.body = append(b.body, raw...)
			b.rows += int(rows)
		case arrowDictionaryBatch:
			s.prefix = append(s.prefix, raw...)
			b.body = append(b.body, raw...)
		default:
			return fmt.Errorf("arrow input: unexpected message type %d", typ)
		}
	}
	b.end = len(b.body)
	b.body = binary.LittleEndian.AppendUint32(b.body, 0xFFFFFFFF)
	b.body = binary.LittleEndian.AppendUint32(b.body, 0)
	if b.rows == 0 {
		return io.EOF
	}
	return nil
}
