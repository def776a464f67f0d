package stream

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// arrowDecoder decodes an Arrow IPC stream (not the file format). Columns are
// matched by name; unknown columns are ignored. Accepted input types:
//
//	period               date32, date64, timestamp (any unit; the instant's UTC day),
//	                     utf8 / large utf8 (parsed with ParsePeriod)
//	dimension, object id utf8, large utf8, dictionary of utf8, any integer type (as text)
//	measure, covariates  any float or integer type, or utf8 / large utf8
//	                     numeric text (parsed like CSV fields)
//
// A missing required column or a column of another type refuses the whole
// body with a *SyntaxError naming the field, as does an unreadable stream.
//
// Fast path: when a batch's columns already have the output types (date32,
// utf8, float64) and no row of it is rejected, the input arrays are reused
// zero-copy (retained) and only _series_id, _row and the aligned period are
// computed. Otherwise the rows go through the shared row builder.
type arrowDecoder struct {
	maxBytes int64
	mem      memory.Allocator
}

func newArrowDecoderFromConfig(cfg DecodeConfig) decoder {
	return newArrowDecoder(cfg.MaxBytes, cfg.Allocator)
}

func newArrowDecoder(maxBytes int64, mem memory.Allocator) *arrowDecoder {
	return &arrowDecoder{maxBytes: maxBytes, mem: mem}
}

type colKind uint8

const (
	ckNone colKind = iota
	ckString
	ckLargeString
	ckDict
	ckInt
	ckFloat64
	ckFloat // other float types
	ckDate32
	ckDate64
	ckTimestamp
)

// colReader reads one input column of the current batch as fields.
type colReader struct {
	idx     int // column index in the input schema, -1 when absent
	kind    colKind
	unitDay int64 // timestamp units per day
	arr     arrow.Array
	noNulls bool
	// strings
	data   []byte
	offs32 []int32
	offs64 []int64
	dict   *array.Dictionary
	dictR  *colReader
	// numbers
	f64     []float64
	d32     []arrow.Date32
	scratch []byte
}

func isInt(t arrow.Type) bool {
	switch t {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return true
	}
	return false
}

// kindOf classifies dt for a column of role; ok is false when the type is
// not usable for that role.
func kindOf(dt arrow.DataType, role colRole) (colKind, int64, bool) {
	switch role {
	case rolePeriod:
		switch t := dt.(type) {
		case *arrow.Date32Type:
			return ckDate32, 0, true
		case *arrow.Date64Type:
			return ckDate64, 0, true
		case *arrow.TimestampType:
			per := map[arrow.TimeUnit]int64{arrow.Second: 86400, arrow.Millisecond: 86400e3, arrow.Microsecond: 86400e6, arrow.Nanosecond: 86400e9}
			return ckTimestamp, per[t.Unit], true
		case *arrow.StringType:
			return ckString, 0, true
		case *arrow.LargeStringType:
			return ckLargeString, 0, true
		}
	case roleDim, roleOID:
		switch t := dt.(type) {
		case *arrow.StringType:
			return ckString, 0, true
		case *arrow.LargeStringType:
			return ckLargeString, 0, true
		case *arrow.DictionaryType:
			switch t.ValueType.(type) {
			case *arrow.StringType, *arrow.LargeStringType:
				return ckDict, 0, true
			}
		}
		if isInt(dt.ID()) {
			return ckInt, 0, true
		}
	case roleMeasure, roleCov:
		switch dt.ID() {
		case arrow.FLOAT64:
			return ckFloat64, 0, true
		case arrow.FLOAT32, arrow.FLOAT16:
			return ckFloat, 0, true
		}
		if isInt(dt.ID()) {
			return ckInt, 0, true
		}
		// Numeric text, as in CSV, so that streamtest.Body's all-utf8
		// streams decode like the other formats.
		switch dt.(type) {
		case *arrow.StringType:
			return ckString, 0, true
		case *arrow.LargeStringType:
			return ckLargeString, 0, true
		}
	}
	return ckNone, 0, false
}

func wantTypes(role colRole) string {
	switch role {
	case rolePeriod:
		return "date32, date64, timestamp or utf8"
	case roleDim, roleOID:
		return "utf8, large utf8, dictionary of utf8 or an integer type"
	}
	return "a float or integer type (or utf8 numeric text)"
}

func (c *colReader) reset(a arrow.Array) {
	c.arr = a
	c.noNulls = a.NullN() == 0
	switch c.kind {
	case ckString:
		s := a.(*array.String)
		c.data, c.offs32 = s.ValueBytes(), s.ValueOffsets()
	case ckLargeString:
		s := a.(*array.LargeString)
		c.data, c.offs64 = s.ValueBytes(), s.ValueOffsets()
	case ckDict:
		c.dict = a.(*array.Dictionary)
		if c.dictR == nil {
			c.dictR = &colReader{}
		}
		c.dictR.kind = ckString
		if _, ok := c.dict.Dictionary().(*array.LargeString); ok {
			c.dictR.kind = ckLargeString
		}
		c.dictR.reset(c.dict.Dictionary())
	case ckFloat64:
		c.f64 = a.(*array.Float64).Float64Values()
	case ckDate32:
		c.d32 = a.(*array.Date32).Date32Values()
	}
}

func (c *colReader) get(i int) field {
	if !c.noNulls && c.arr.IsNull(i) {
		return field{}
	}
	switch c.kind {
	case ckString:
		base := c.offs32[0]
		return field{b: c.data[c.offs32[i]-base : c.offs32[i+1]-base], kind: fText}
	case ckLargeString:
		base := c.offs64[0]
		return field{b: c.data[c.offs64[i]-base : c.offs64[i+1]-base], kind: fText}
	case ckDict:
		return c.dictR.get(c.dict.GetValueIndex(i))
	case ckFloat64:
		return field{num: c.f64[i], kind: fFloat}
	case ckDate32:
		return field{day: int32(c.d32[i]), kind: fDay}
	case ckDate64:
		ms := int64(c.arr.(*array.Date64).Value(i))
		return field{day: int32(floorDiv(ms, 86400e3)), kind: fDay}
	case ckTimestamp:
		v := int64(c.arr.(*array.Timestamp).Value(i))
		return field{day: int32(floorDiv(v, c.unitDay)), kind: fDay}
	case ckFloat:
		switch a := c.arr.(type) {
		case *array.Float32:
			return field{num: float64(a.Value(i)), kind: fFloat}
		case *array.Float16:
			return field{num: float64(a.Value(i).Float32()), kind: fFloat}
		}
	case ckInt:
		var v int64
		var u uint64
		signed := true
		switch a := c.arr.(type) {
		case *array.Int8:
			v = int64(a.Value(i))
		case *array.Int16:
			v = int64(a.Value(i))
		case *array.Int32:
			v = int64(a.Value(i))
		case *array.Int64:
			v = a.Value(i)
		case *array.Uint8:
			u, signed = uint64(a.Value(i)), false
		case *array.Uint16:
			u, signed = uint64(a.Value(i)), false
		case *array.Uint32:
			u, signed = uint64(a.Value(i)), false
		case *array.Uint64:
			u, signed = a.Value(i), false
		}
		// Integers are kept as text: exact for dimensions, and parsed
		// exactly by ParseFloat for numbers.
		if signed {
			c.scratch = strconv.AppendInt(c.scratch[:0], v, 10)
		} else {
			c.scratch = strconv.AppendUint(c.scratch[:0], u, 10)
		}
		return field{b: c.scratch, kind: fNumber}
	}
	return field{}
}

func (d *arrowDecoder) decode(ctx context.Context, r io.Reader, rb *rowBuilder) error {
	lr := &limitedReader{r: r, max: d.maxBytes}
	defer func() { rb.batch.Bytes = lr.n }()
	synErr := func(field, msg string) error {
		return &SyntaxError{Format: Arrow, Field: field, Msg: msg}
	}
	rdr, err := ipc.NewReader(lr, ipc.WithAllocator(d.mem), ipc.WithBodySizeLimit(d.maxBytes))
	if err != nil {
		if lr.err != nil {
			return lr.err
		}
		if lr.n == 0 {
			return nil // empty body
		}
		return synErr("", "unreadable IPC stream: "+err.Error())
	}
	defer rdr.Release()
	in := rdr.Schema()
	readers := make([]colReader, len(rb.cols))
	fast := true
	for i, c := range rb.cols {
		cr := &readers[i]
		cr.idx = -1
		idx := in.FieldIndices(c.name)
		if len(idx) == 0 {
			if c.required {
				return synErr(c.name, fmt.Sprintf("missing required column %q", c.name))
			}
			continue
		}
		if len(idx) > 1 {
			return synErr(c.name, fmt.Sprintf("duplicate column %q", c.name))
		}
		dt := in.Field(idx[0]).Type
		k, unit, ok := kindOf(dt, c.role)
		if !ok {
			return synErr(c.name, fmt.Sprintf("column %q has type %s, want %s", c.name, dt, wantTypes(c.role)))
		}
		cr.idx, cr.kind, cr.unitDay = idx[0], k, unit
		switch c.role {
		case rolePeriod:
			fast = fast && k == ckDate32
		case roleDim, roleOID:
			fast = fast && k == ckString
		default:
			fast = fast && k == ckFloat64
		}
	}
	var fp *arrowFastPath
	if fast {
		fp = newArrowFastPath(d.mem)
		defer fp.release()
	}
	for rdr.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec := rdr.RecordBatch()
		for i := range readers {
			if cr := &readers[i]; cr.idx >= 0 {
				cr.reset(rec.Column(cr.idx))
			}
		}
		n := int(rec.NumRows())
		if fp != nil {
			done, err := fp.batch(ctx, rec, readers, rb)
			if err != nil {
				return err
			}
			if done {
				continue
			}
		}
		for row := 0; row < n; row++ {
			for i := range readers {
				if cr := &readers[i]; cr.idx >= 0 {
					rb.vals[i] = cr.get(row)
				}
			}
			if err := rb.endRow(ctx); err != nil {
				return err
			}
		}
	}
	if lr.err != nil {
		return lr.err
	}
	if err := rdr.Err(); err != nil {
		return synErr("", "unreadable IPC stream: "+err.Error())
	}
	return nil
}

// arrowFastPath builds the computed columns of zero-copy output records.
type arrowFastPath struct {
	mem     memory.Allocator
	series  *array.Uint64Builder
	row     *array.Int32Builder
	period  *array.Date32Builder
	nullCol map[int]arrow.Array
}

func newArrowFastPath(mem memory.Allocator) *arrowFastPath {
	return &arrowFastPath{
		mem:    mem,
		series: array.NewUint64Builder(mem),
		row:    array.NewInt32Builder(mem),
		period: array.NewDate32Builder(mem),
	}
}

func (fp *arrowFastPath) release() {
	fp.series.Release()
	fp.row.Release()
	fp.period.Release()
}

// discard drops what the builders hold.
func (fp *arrowFastPath) discard() {
	fp.series.NewArray().Release()
	fp.row.NewArray().Release()
	fp.period.NewArray().Release()
}

// batch validates every row of rec; when all are good it appends a
// zero-copy record and reports done. Otherwise nothing is kept and the
// caller takes the slow path for this batch (which reports the rejections).
//
// The checks mirror rowBuilder.check on typed slices, without going through
// rowBuilder.vals: copying fields there per row costs more than the rest of
// the fast path.
func (fp *arrowFastPath) batch(ctx context.Context, rec arrow.RecordBatch, readers []colReader, rb *rowBuilder) (bool, error) {
	n := int(rec.NumRows())
	if n == 0 {
		return true, nil
	}
	if (rb.maxRows > 0 && rb.rows+n > rb.maxRows) || int64(rb.rows)+int64(n) > 1<<31-1 {
		return false, nil // the slow path reports the row past the limit
	}
	// Pure-ASCII string columns need no per-value UTF-8 check.
	ascii := make([]bool, len(readers))
	for i := 1; i < len(readers); i++ {
		if cr := &readers[i]; cr.idx >= 0 && cr.kind == ckString {
			ascii[i] = isASCII(cr.data)
		}
	}
	fp.series.Reserve(n)
	fp.row.Reserve(n)
	fp.period.Reserve(n)
	h := rb.hasher
	cols := rb.cols
	nd := rb.nDims
	ok := true
	for r := 0; r < n && ok; r++ {
		pr := &readers[0]
		if !pr.noNulls && pr.arr.IsNull(r) {
			ok = false
			break
		}
		day := rb.align(int32(pr.d32[r]))
		h.Begin()
		for i := 1; i < len(readers); i++ {
			cr := &readers[i]
			c := &cols[i]
			if cr.idx < 0 {
				if c.required {
					ok = false
				}
				continue
			}
			null := !cr.noNulls && cr.arr.IsNull(r)
			if c.role == roleMeasure || c.role == roleCov {
				if null {
					ok = ok && !c.required
					continue
				}
				f := cr.f64[r]
				if math.IsNaN(f) || math.IsInf(f, 0) || f < c.min || f > c.max {
					ok = false
				}
				continue
			}
			var b []byte
			if !null {
				base := cr.offs32[0]
				b = cr.data[cr.offs32[r]-base : cr.offs32[r+1]-base]
			}
			if len(b) == 0 {
				ok = ok && !c.required
				continue
			}
			if (!ascii[i] && !utf8.Valid(b)) || c.allowed != nil && !c.isAllowed(b) {
				ok = false
			}
			if i <= nd {
				h.Add(b)
			}
		}
		fp.series.UnsafeAppend(h.Sum())
		fp.row.UnsafeAppend(int32(rb.rows + r + 1))
		fp.period.UnsafeAppend(arrow.Date32(day))
	}
	if !ok {
		fp.discard()
		return false, nil
	}
	out := make([]arrow.Array, 0, len(readers)+2)
	out = append(out, fp.series.NewArray(), fp.row.NewArray(), fp.period.NewArray())
	for i := range readers[1:] {
		cr := &readers[1+i]
		if cr.idx >= 0 {
			a := rec.Column(cr.idx)
			a.Retain()
			out = append(out, a)
			continue
		}
		out = append(out, array.MakeArrayOfNull(fp.mem, rb.schema.Field(IdxPeriod+1+i).Type, n))
	}
	res := array.NewRecordBatch(rb.schema, out, int64(n))
	for _, c := range out {
		c.Release()
	}
	defer res.Release()
	rb.rows += n
	rb.batch.RowsIn = rb.rows
	return true, rb.appendRecord(ctx, res)
}

// isASCII reports whether b holds only ASCII bytes, 8 at a time.
func isASCII(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
