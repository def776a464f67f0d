package tracking

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Value encodings. Every record value starts with a version byte; fields
// are varints (signed) and uvarint-length-prefixed strings, appended in a
// fixed order, so equal records encode to equal bytes on every node.
//
// WARNING: on-disk format; add fields only at the end of a new version.
const codecV1 byte = 1

var errCorrupt = errors.New("tracking: corrupt record")

func appendVarint(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// dec reads a value; the first error sticks and later reads return zero.
type dec struct {
	b   []byte
	err error
}

func (d *dec) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *dec) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) str() string {
	n := d.uvarint()
	if d.err != nil || uint64(len(d.b)) < n {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// bytes returns a uvarint-length-prefixed byte string without copying it.
func (d *dec) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || uint64(len(d.b)) < n {
		d.fail()
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

func (d *dec) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
}

func (d *dec) version() {
	if v := d.byte(); d.err == nil && v != codecV1 {
		d.err = fmt.Errorf("tracking: unknown record version %d", v)
	}
}

func encodeTxState(b []byte, st *txState) []byte {
	t := &st.tx
	b = append(b, codecV1)
	var flags byte
	if st.recorded {
		flags |= 1
	}
	b = append(b, flags, t.Status.code())
	b = append(b, st.stages[:]...)
	b = appendStr(b, t.Dataset)
	b = appendStr(b, string(t.Source))
	b = appendStr(b, t.ContentType)
	b = appendVarint(b, t.Bytes)
	b = appendVarint(b, unixNanos(t.Created))
	b = appendVarint(b, unixNanos(t.Updated))
	b = appendVarint(b, t.In)
	b = appendVarint(b, t.Accepted)
	b = appendVarint(b, t.Rejected)
	b = appendStr(b, t.Node)
	b = appendStr(b, t.Client)
	b = appendStr(b, t.IdempotencyKey)
	return appendStr(b, st.lastError)
}

func decodeTxState(id [ulidLen]byte, v []byte) (*txState, error) {
	d := dec{b: v}
	d.version()
	st := &txState{}
	flags := d.byte()
	st.recorded = flags&1 != 0
	t := &st.tx
	t.ID = formatULID(id)
	t.Status = statusOf(d.byte())
	for i := range st.stages {
		st.stages[i] = d.byte()
	}
	t.Dataset = d.str()
	t.Source = Source(d.str())
	t.ContentType = d.str()
	t.Bytes = d.varint()
	t.Created = fromNanos(d.varint())
	t.Updated = fromNanos(d.varint())
	t.In = d.varint()
	t.Accepted = d.varint()
	t.Rejected = d.varint()
	t.Node = d.str()
	t.Client = d.str()
	t.IdempotencyKey = d.str()
	st.lastError = d.str()
	if d.err != nil {
		return nil, fmt.Errorf("decode transaction %s: %w", t.ID, d.err)
	}
	return st, nil
}

func encodeBlock(b []byte, blk *Block) []byte {
	b = append(b, codecV1, blk.Status.code())
	b = appendVarint(b, unixNanos(blk.Started))
	b = appendVarint(b, unixNanos(blk.Finished))
	b = appendVarint(b, blk.RowsIn)
	b = appendVarint(b, blk.RowsOut)
	b = appendStr(b, blk.Error)
	b = appendStr(b, blk.Node)
	b = appendVarint(b, int64(blk.CPUTime))
	b = appendVarint(b, blk.Bytes)
	return appendVarint(b, int64(blk.Parts))
}

func decodeBlock(st Stage, v []byte) (Block, error) {
	d := dec{b: v}
	d.version()
	blk := Block{Stage: st}
	blk.Status = blockStatusOf(d.byte())
	blk.Started = fromNanos(d.varint())
	blk.Finished = fromNanos(d.varint())
	blk.RowsIn = d.varint()
	blk.RowsOut = d.varint()
	blk.Error = d.str()
	blk.Node = d.str()
	blk.CPUTime = time.Duration(d.varint())
	blk.Bytes = d.varint()
	blk.Parts = int(d.varint())
	if d.err != nil {
		return Block{}, fmt.Errorf("decode block %s: %w", st, d.err)
	}
	return blk, nil
}

func encodeRejection(b []byte, r *Rejection) []byte {
	b = append(b, codecV1)
	b = appendStr(b, r.ObjectID)
	b = appendStr(b, r.Field)
	return appendStr(b, r.Reason)
}

func decodeRejection(row uint32, v []byte) (Rejection, error) {
	d := dec{b: v}
	d.version()
	r := Rejection{Row: int(row)}
	r.ObjectID = d.str()
	r.Field = d.str()
	r.Reason = d.str()
	if d.err != nil {
		return Rejection{}, fmt.Errorf("decode rejection row %d: %w", row, d.err)
	}
	return r, nil
}

// Object chunks (keys.go, "Object index"): a header, then the entries of
// one bucket of one RecordObjects call in call order.
const objHasDataset byte = 0x80

// appendObjectChunkHeader appends the version, the flags, the dataset if
// withDataset, and the entry count n.
func appendObjectChunkHeader(b []byte, dataset string, withDataset bool, n int) []byte {
	var f byte
	if withDataset {
		f |= objHasDataset
	}
	b = append(b, codecV1, f)
	if withDataset {
		b = appendStr(b, dataset)
	}
	return binary.AppendUvarint(b, uint64(n))
}

// appendObjectEntry appends one entry of a chunk: the id front-coded
// against the previous entry's id in the chunk (shared prefix length, then
// the rest), the row as a delta from the previous entry's row (0 for the
// first), the code (stage's code << 2 | outcome's code), and field and
// reason if rejected.
func appendObjectEntry(b []byte, id, field, reason string, shared int, rowDelta int64, code byte) []byte {
	b = binary.AppendUvarint(b, uint64(shared))
	b = appendStr(b, id[shared:])
	b = binary.AppendVarint(b, rowDelta)
	b = append(b, code)
	if code&3 == 2 { // rejected
		b = appendStr(b, field)
		b = appendStr(b, reason)
	}
	return b
}

// objectEntrySize is len(appendObjectEntry(nil, id, field, reason, shared, rowDelta, code)).
func objectEntrySize(id, field, reason string, shared int, rowDelta int64, code byte) int {
	rest := len(id) - shared
	n := uvarintLen(uint64(shared)) + uvarintLen(uint64(rest)) + rest + varintLen(rowDelta) + 1
	if code&3 == 2 {
		n += uvarintLen(uint64(len(field))) + len(field) + uvarintLen(uint64(len(reason))) + len(reason)
	}
	return n
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func varintLen(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return uvarintLen(u)
}

// commonPrefix returns the length of the common prefix of a and b, at most
// maxShared.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b), maxShared)
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// maxShared caps the front-coded prefix so it fits in a byte of scratch.
const maxShared = 255

// objectHit is one entry of a chunk that matched the looked-up id.
type objectHit struct {
	row     uint32
	stage   Stage
	outcome Outcome
	field   string
	reason  string
}

// scanObjectChunk decodes chunk v and appends to hits the entries of
// objectID, rebuilding each id in the scratch buffer cur (returned for
// reuse) and comparing bytes, without allocating for the others. It
// returns the chunk's dataset if it carries one (hasDataset; a slice of v).
func scanObjectChunk(v []byte, objectID string, hits []objectHit, cur []byte) (_ []objectHit, _ []byte, dataset []byte, hasDataset bool, err error) {
	d := dec{b: v}
	d.version()
	f := d.byte()
	if hasDataset = f&objHasDataset != 0; hasDataset {
		dataset = d.bytes()
	}
	n := d.uvarint()
	cur = cur[:0]
	var row int64
	for ; n > 0 && d.err == nil; n-- {
		shared := d.uvarint()
		rest := d.bytes()
		row += d.varint()
		so := d.byte()
		var field, reason []byte
		outcome := outcomeOf(so & 3)
		if outcome == OutcomeRejected {
			field, reason = d.bytes(), d.bytes()
		}
		if d.err != nil {
			break
		}
		if outcome == "" || row < 0 || row > 1<<32-1 || shared > uint64(len(cur)) {
			d.fail()
			break
		}
		cur = append(cur[:shared], rest...)
		if string(cur) == objectID {
			hits = append(hits, objectHit{row: uint32(row), stage: stageOf(so >> 2), outcome: outcome,
				field: string(field), reason: string(reason)})
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return hits, cur, dataset, hasDataset, d.err
}
