package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Defaults of DecodeConfig.
const (
	// DefaultChunkRows is the default number of rows per output record.
	DefaultChunkRows = 16384
	// DefaultMaxBytes is the default limit on the body size Decode reads
	// (256 MiB, the Arrow IPC reader's default body limit).
	DefaultMaxBytes = 256 << 20
)

// ErrBodyTooLarge is returned (wrapped) by Decode when the body is longer
// than DecodeConfig.MaxBytes.
var ErrBodyTooLarge = errors.New("stream: body too large")

// ErrInvalidDecodeConfig is wrapped by every error DecodeConfig.Validate
// returns.
var ErrInvalidDecodeConfig = errors.New("stream: invalid decode config")

// DecodeConfig configures Decode. The zero value is valid: a zero field means
// its default.
type DecodeConfig struct {
	// Allocator allocates the output records (and, for Arrow bodies, the
	// input batches). Default memory.DefaultAllocator.
	Allocator memory.Allocator
	// ChunkRows is the largest number of rows in one output record.
	// Default DefaultChunkRows (16384); at most math.MaxInt32.
	ChunkRows int
	// MaxRows limits the data rows of one body (accepted + rejected); a body
	// with more rows is refused with a *SyntaxError "too many rows".
	// Default 0 = unlimited (bounded by MaxBytes and by the int32 _row
	// column).
	MaxRows int
	// MaxBytes limits the body size in bytes (after decompression); a
	// longer body is refused with an error wrapping ErrBodyTooLarge. It is
	// also the Arrow IPC reader's message body limit. Default
	// DefaultMaxBytes (256 MiB).
	MaxBytes int64
}

// DefaultDecodeConfig returns the configuration with every default filled.
func DefaultDecodeConfig() DecodeConfig {
	return DecodeConfig{}.withDefaults()
}

// Validate reports the first invalid field of c.
func (c DecodeConfig) Validate() error {
	switch {
	case c.ChunkRows < 0 || c.ChunkRows > math.MaxInt32:
		return fmt.Errorf("%w: chunk rows %d: want 0 (default) to %d", ErrInvalidDecodeConfig, c.ChunkRows, math.MaxInt32)
	case c.MaxRows < 0:
		return fmt.Errorf("%w: max rows %d: want 0 (unlimited) or more", ErrInvalidDecodeConfig, c.MaxRows)
	case c.MaxBytes < 0:
		return fmt.Errorf("%w: max bytes %d: want 0 (default) or more", ErrInvalidDecodeConfig, c.MaxBytes)
	}
	return nil
}

func (c DecodeConfig) withDefaults() DecodeConfig {
	if c.Allocator == nil {
		c.Allocator = memory.DefaultAllocator
	}
	if c.ChunkRows == 0 {
		c.ChunkRows = DefaultChunkRows
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	return c
}

// decoder turns one body into rows of a rowBuilder. A decoder is used for one
// body only.
type decoder interface {
	decode(ctx context.Context, r io.Reader, rb *rowBuilder) error
}

// decoderEntry is one row of the decoder table.
type decoderEntry struct {
	// newFromConfig builds a decoder for one body.
	newFromConfig func(cfg DecodeConfig) decoder
	// streaming decoders read the body incrementally; the others read it
	// whole into memory (bounded by MaxBytes) and scan the bytes.
	streaming bool
}

// decoders is the explicit format table (no init registration).
var decoders = map[Format]decoderEntry{
	CSV:    {newFromConfig: newCSVDecoderFromConfig},
	NDJSON: {newFromConfig: newNDJSONDecoderFromConfig},
	JSON:   {newFromConfig: newJSONDecoderFromConfig},
	XML:    {newFromConfig: newXMLDecoderFromConfig, streaming: true},
	Arrow:  {newFromConfig: newArrowDecoderFromConfig, streaming: true},
}

// Decode reads one request body in format f and validates its rows against
// s, which must be a validated schema. Good rows become records in
// s.ArrowSchema() layout, bad rows RowErrors in Batch.Rejected; neither
// aborts the other. A body that is not well-formed in its format is refused
// with a *SyntaxError; a body over cfg.MaxBytes with an error wrapping
// ErrBodyTooLarge; a canceled ctx (checked between chunks) with ctx's error.
// An empty body gives an empty Batch.
//
// The caller must Release the returned Batch. Decode is safe for concurrent
// use with distinct readers; s is only read.
func Decode(ctx context.Context, f Format, r io.Reader, s *Schema, cfg DecodeConfig) (*Batch, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if s == nil {
		return nil, errors.New("stream: decode: nil schema")
	}
	cfg = cfg.withDefaults()
	e, ok := decoders[f]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedFormat, f)
	}
	rb := newRowBuilder(s, f, cfg)
	defer rb.release()
	if err := e.newFromConfig(cfg).decode(ctx, r, rb); err != nil {
		rb.batch.Release()
		return nil, err
	}
	if err := rb.flush(ctx); err != nil {
		rb.batch.Release()
		return nil, err
	}
	b := rb.batch
	rb.batch = Batch{}
	return &b, nil
}

// bodyPool recycles body buffers: decoders copy every value they keep into
// Arrow builders, so a body buffer is free again once Decode returns.
var bodyPool sync.Pool // of *[]byte

// decodeWhole reads the body whole (bounded by max) into a pooled buffer,
// counts its bytes into the batch and hands it to decodeBytes; the text
// decoders (CSV, NDJSON, JSON) share it.
func decodeWhole(ctx context.Context, r io.Reader, max int64, rb *rowBuilder, decodeBytes func(context.Context, []byte, *rowBuilder) error) error {
	bp, err := readBody(r, max)
	if err != nil {
		return err
	}
	defer putBody(bp)
	rb.batch.Bytes = int64(len(*bp))
	return decodeBytes(ctx, *bp, rb)
}

// readBody reads r whole, up to max bytes, into a pooled buffer; the caller
// must call putBody when done with it. A reader with a Len method (bytes.Reader,
// strings.Reader, bytes.Buffer) is read into a buffer of the right size.
func readBody(r io.Reader, max int64) (*[]byte, error) {
	bp, _ := bodyPool.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	buf := (*bp)[:0]
	want := 64 << 10
	if l, ok := r.(interface{ Len() int }); ok && int64(l.Len()) <= max {
		want = l.Len() + 1 // +1: room to see EOF without growing
	}
	if cap(buf) < want {
		buf = make([]byte, 0, want)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			*bp = buf
			putBody(bp)
			return nil, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, max)
		}
		if err == io.EOF {
			*bp = buf
			return bp, nil
		}
		if err != nil {
			*bp = buf
			putBody(bp)
			return nil, fmt.Errorf("read body: %w", err)
		}
	}
}

// putBody returns a body buffer to the pool; huge ones are dropped so one
// big request does not pin its memory.
func putBody(bp *[]byte) {
	if cap(*bp) <= 64<<20 {
		*bp = (*bp)[:0]
		bodyPool.Put(bp)
	}
}

// trimBOM drops a leading UTF-8 byte order mark.
func trimBOM(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		return b[3:]
	}
	return b
}

// lineCol returns the 1-based line and byte column of offset off in buf. It
// is only called on errors, so the hot paths need not count lines.
func lineCol(buf []byte, off int) (line, col int) {
	if off > len(buf) {
		off = len(buf)
	}
	line, start := 1, 0
	for i := 0; i < off; i++ {
		if buf[i] == '\n' {
			line++
			start = i + 1
		}
	}
	return line, off - start + 1
}

// fieldKind says how a field's value was written in the body.
type fieldKind uint8

const (
	fMissing   fieldKind = iota // absent, JSON null
	fText                       // CSV/XML text or a JSON string
	fNumber                     // a JSON number literal (text in b)
	fBool                       // a JSON true/false literal (text in b)
	fComposite                  // a JSON object or array
	fFloat                      // a typed number (Arrow), in num
	fDay                        // a typed day (Arrow), days since epoch in day
)

// field is one input value of the current row. b points into the body or a
// decoder's scratch space and is valid until the row ends.
type field struct {
	b    []byte
	num  float64
	day  int32
	kind fieldKind
}

type colRole uint8

const (
	rolePeriod colRole = iota
	roleDim
	roleMeasure
	roleCov
	roleOID
)

// colSpec is one input column of the schema with its compiled rule.
type colSpec struct {
	name     string
	role     colRole
	required bool
	min, max float64 // -Inf/+Inf when unset
	hasRange bool
	allowed  map[string]struct{}
	list     []string // the allowed values; short lists are scanned, not hashed
	// short holds shortKey of every allowed value when all of them are
	// at most 7 bytes (codes such as "EU-DE"); nil otherwise.
	short []uint64
	want  string // allowed values for messages: "EU-DE, EU-FR"
}

// shortKey packs a value of at most 7 bytes and its length into a uint64:
// two such values are equal exactly when their keys are.
func shortKey[T string | []byte](b T) uint64 {
	k := uint64(len(b)) << 56
	for i := range len(b) {
		k |= uint64(b[i]) << (8 * i)
	}
	return k
}

// isAllowed reports whether b is an allowed value of c (c.allowed != nil).
func (c *colSpec) isAllowed(b []byte) bool {
	if c.short != nil {
		// One load and a scan of integers instead of a string hash per
		// row: allowed-value checks were 3% of a node's CPU under Arrow
		// ingest with a 12-value list.
		if len(b) > 7 {
			return false
		}
		k := shortKey(b)
		for _, a := range c.short {
			if a == k {
				return true
			}
		}
		return false
	}
	if len(c.list) <= 8 {
		for _, a := range c.list {
			if a == string(b) { // no allocation
				return true
			}
		}
		return false
	}
	_, ok := c.allowed[string(b)] // no allocation: map index by string([]byte)
	return ok
}

func compileColumns(s *Schema) []colSpec {
	names := s.Columns()
	cols := make([]colSpec, len(names))
	for i, n := range names {
		c := colSpec{name: n, min: math.Inf(-1), max: math.Inf(1)}
		switch {
		case i == 0:
			c.role = rolePeriod
		case i <= len(s.Dimensions):
			c.role = roleDim
		case i == len(s.Dimensions)+1:
			c.role = roleMeasure
		case i <= len(s.Dimensions)+1+len(s.Covariates):
			c.role = roleCov
		default:
			c.role = roleOID
		}
		c.required = c.role == rolePeriod || c.role == roleDim || c.role == roleMeasure
		if r, ok := s.Rules[n]; ok {
			c.required = c.required || r.Required
			if r.Min != nil {
				c.min, c.hasRange = *r.Min, true
			}
			if r.Max != nil {
				c.max, c.hasRange = *r.Max, true
			}
			if len(r.Allowed) > 0 {
				c.allowed = make(map[string]struct{}, len(r.Allowed))
				for _, a := range r.Allowed {
					c.allowed[a] = struct{}{}
				}
				c.list = r.Allowed
				c.want = strings.Join(r.Allowed, ", ")
				if !slices.ContainsFunc(r.Allowed, func(a string) bool { return len(a) > 7 }) {
					for _, a := range r.Allowed {
						c.short = append(c.short, shortKey(a))
					}
				}
			}
		}
		cols[i] = c
	}
	return cols
}

// rowBuilder is shared by every decoder: a decoder sets the input fields of
// one row in vals (indexed like Schema.Columns), then calls endRow, which
// validates the row and appends it to the Arrow builders or to the rejected
// list. Full chunks become records. Not safe for concurrent use.
type rowBuilder struct {
	s         *Schema
	format    Format
	mem       memory.Allocator
	chunkRows int
	maxRows   int
	schema    *arrow.Schema
	cols      []colSpec
	colIndex  map[string]int // input column name -> index in cols
	nDims     int
	iMeasure  int
	iOID      int // -1 when the schema has no object id

	vals   []field // the current row
	rows   int     // data rows seen so far
	hasher *SeriesHasher

	// period cache: consecutive rows usually repeat the period.
	lastPeriod   []byte
	lastDay      int32
	lastPeriodOK bool
	lastAlignIn  int32
	lastAlignOut int32

	// scratch for the current row's parsed values
	day      int32
	measure  float64
	covs     []float64
	covValid []bool

	bSeries  *array.Uint64Builder
	bRow     *array.Int32Builder
	bPeriod  *array.Date32Builder
	bDims    []*array.StringBuilder
	bMeasure *array.Float64Builder
	bCovs    []*array.Float64Builder
	bOID     *array.StringBuilder
	pending  int // rows in the builders
	reserved bool
	hint     int // expected rows, for Reserve

	batch Batch
}

func newRowBuilder(s *Schema, f Format, cfg DecodeConfig) *rowBuilder {
	rb := &rowBuilder{
		s:         s,
		format:    f,
		mem:       cfg.Allocator,
		chunkRows: cfg.ChunkRows,
		maxRows:   cfg.MaxRows,
		schema:    s.ArrowSchema(),
		cols:      compileColumns(s),
		nDims:     len(s.Dimensions),
		iMeasure:  1 + len(s.Dimensions),
		iOID:      -1,
		hasher:    NewSeriesHasher(s.Name),
		covs:      make([]float64, len(s.Covariates)),
		covValid:  make([]bool, len(s.Covariates)),

		lastAlignOut: math.MinInt32,
	}
	if s.ObjectID != "" {
		rb.iOID = len(rb.cols) - 1
	}
	rb.colIndex = make(map[string]int, len(rb.cols))
	for i, c := range rb.cols {
		rb.colIndex[c.name] = i
	}
	rb.vals = make([]field, len(rb.cols))
	mem := rb.mem
	rb.bSeries = array.NewUint64Builder(mem)
	rb.bRow = array.NewInt32Builder(mem)
	rb.bPeriod = array.NewDate32Builder(mem)
	for range s.Dimensions {
		rb.bDims = append(rb.bDims, array.NewStringBuilder(mem))
	}
	rb.bMeasure = array.NewFloat64Builder(mem)
	for range s.Covariates {
		rb.bCovs = append(rb.bCovs, array.NewFloat64Builder(mem))
	}
	if s.ObjectID != "" {
		rb.bOID = array.NewStringBuilder(mem)
	}
	return rb
}

// release frees the builders (not the batch).
func (rb *rowBuilder) release() {
	rb.bSeries.Release()
	rb.bRow.Release()
	rb.bPeriod.Release()
	for _, b := range rb.bDims {
		b.Release()
	}
	rb.bMeasure.Release()
	for _, b := range rb.bCovs {
		b.Release()
	}
	if rb.bOID != nil {
		rb.bOID.Release()
	}
}

// hintRows tells the builder how many rows the body probably holds, so the
// first chunk reserves the right capacity.
func (rb *rowBuilder) hintRows(n int) { rb.hint = n }

// column returns the input column index of name, or -1.
func (rb *rowBuilder) column(name []byte) int {
	if i, ok := rb.colIndex[string(name)]; ok { // no allocation: map index by string([]byte)
		return i
	}
	return -1
}

func (rb *rowBuilder) reserve() {
	n := rb.chunkRows
	if rb.hint > 0 && rb.hint < n {
		n = max(rb.hint, 16)
	}
	rb.bSeries.Reserve(n)
	rb.bRow.Reserve(n)
	rb.bPeriod.Reserve(n)
	for _, b := range rb.bDims {
		b.Reserve(n)
		b.ReserveData(n * 8)
	}
	rb.bMeasure.Reserve(n)
	for _, b := range rb.bCovs {
		b.Reserve(n)
	}
	if rb.bOID != nil {
		rb.bOID.Reserve(n)
		rb.bOID.ReserveData(n * 8)
	}
	rb.reserved = true
}

// nextRow counts one data row and enforces MaxRows.
func (rb *rowBuilder) nextRow() (int, error) {
	rb.rows++
	rb.batch.RowsIn = rb.rows
	if (rb.maxRows > 0 && rb.rows > rb.maxRows) || rb.rows > math.MaxInt32 {
		lim := rb.maxRows
		if lim == 0 {
			lim = math.MaxInt32
		}
		return 0, &SyntaxError{Format: rb.format, Row: rb.rows, Msg: fmt.Sprintf("too many rows: more than %d", lim)}
	}
	return rb.rows, nil
}

// clearRow marks every field of the current row missing.
func (rb *rowBuilder) clearRow() {
	for i := range rb.vals {
		rb.vals[i] = field{}
	}
}

// endRow validates the current row, appends it or rejects it, and clears
// the fields. Its error is a whole-request error (too many rows, ctx).
func (rb *rowBuilder) endRow(ctx context.Context) error {
	row, err := rb.nextRow()
	if err != nil {
		return err
	}
	if fi, reason := rb.check(); reason != "" {
		rb.reject(row, fi, reason)
	} else {
		rb.appendRow(row)
	}
	rb.clearRow()
	if rb.pending >= rb.chunkRows {
		return rb.flush(ctx)
	}
	return nil
}

// rejectRow counts one data row and rejects it as a whole with reason.
func (rb *rowBuilder) rejectRow(reason string) error {
	row, err := rb.nextRow()
	if err != nil {
		return err
	}
	rb.reject(row, -1, reason)
	rb.clearRow()
	return nil
}

func (rb *rowBuilder) reject(row, fi int, reason string) {
	e := RowError{Row: row, Reason: reason}
	if fi >= 0 {
		e.Field = rb.cols[fi].name
	}
	if rb.iOID >= 0 {
		switch v := rb.vals[rb.iOID]; v.kind {
		case fText, fNumber, fBool:
			e.ObjectID = string(v.b)
		}
	}
	rb.batch.Rejected = append(rb.batch.Rejected, e)
}

// check validates the current row and leaves the parsed values in the
// scratch fields. It returns the first field at fault (-1 for the row) and
// the reason, or "" when the row is good.
func (rb *rowBuilder) check() (int, string) {
	// period
	v := &rb.vals[0]
	switch v.kind {
	case fMissing:
		return 0, "missing"
	case fDay:
		rb.day = rb.align(v.day)
	case fText, fNumber:
		b := trimSpace(v.b)
		if len(b) == 0 {
			return 0, "missing"
		}
		if rb.lastPeriodOK && string(b) == string(rb.lastPeriod) {
			rb.day = rb.lastDay
			break
		}
		d, err := ParsePeriod(string(b), rb.s.Frequency)
		if err != nil {
			return 0, err.Error()
		}
		rb.lastPeriod = append(rb.lastPeriod[:0], b...)
		rb.lastDay, rb.lastPeriodOK = d, true
		rb.day = d
	default:
		return 0, "invalid period: " + describe(v)
	}
	// dimensions
	for i := 1; i <= rb.nDims; i++ {
		if reason := rb.checkText(i, true); reason != "" {
			return i, reason
		}
	}
	// measure
	m, ok, reason := rb.number(rb.iMeasure)
	if reason != "" {
		return rb.iMeasure, reason
	}
	if !ok {
		return rb.iMeasure, "missing"
	}
	rb.measure = m
	// covariates
	for j := range rb.covs {
		i := rb.iMeasure + 1 + j
		c, ok, reason := rb.number(i)
		if reason != "" {
			return i, reason
		}
		if !ok && rb.cols[i].required {
			return i, "missing"
		}
		rb.covs[j], rb.covValid[j] = c, ok
	}
	if rb.iOID >= 0 {
		if reason := rb.checkText(rb.iOID, rb.cols[rb.iOID].required); reason != "" {
			return rb.iOID, reason
		}
	}
	return -1, ""
}

// checkText validates a string field (dimension or object id).
func (rb *rowBuilder) checkText(i int, required bool) string {
	v := &rb.vals[i]
	switch v.kind {
	case fMissing:
		if required {
			return "missing"
		}
		return ""
	case fText, fNumber, fBool:
	case fFloat:
		// A typed number from Arrow: use its shortest textual form.
		v.b = strconv.AppendFloat(nil, v.num, 'g', -1, 64)
		v.kind = fText
	default:
		return "want a string, got " + describe(v)
	}
	if len(v.b) == 0 {
		if required {
			return "missing"
		}
		return ""
	}
	if !utf8.Valid(v.b) {
		return "not valid UTF-8"
	}
	c := &rb.cols[i]
	if c.allowed != nil {
		if !c.isAllowed(v.b) {
			return fmt.Sprintf("value %s not allowed (want one of %s)", quote(v.b), c.want)
		}
	}
	return ""
}

// number parses a numeric field; ok is false when it is missing.
func (rb *rowBuilder) number(i int) (f float64, ok bool, reason string) {
	v := &rb.vals[i]
	switch v.kind {
	case fMissing:
		return 0, false, ""
	case fFloat:
		f = v.num
	case fText, fNumber:
		b := trimSpace(v.b)
		if len(b) == 0 {
			return 0, false, ""
		}
		var err error
		f, err = parseFloat(b)
		if err != nil {
			return 0, false, "not a number: " + quote(v.b)
		}
	default:
		return 0, false, "not a number: " + describe(v)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, "not a finite number: " + quoteOrNum(v)
	}
	c := &rb.cols[i]
	if c.hasRange {
		if f < c.min {
			return 0, false, "below min " + strconv.FormatFloat(c.min, 'g', -1, 64)
		}
		if f > c.max {
			return 0, false, "above max " + strconv.FormatFloat(c.max, 'g', -1, 64)
		}
	}
	return f, true, ""
}

// parseFloat parses b without allocating. The unsafe.String view is safe:
// b is not modified during the call and strconv.ParseFloat keeps no
// reference to its argument (its errors copy the input), and the error is
// dropped by the caller anyway.
func parseFloat(b []byte) (float64, error) {
	return strconv.ParseFloat(unsafe.String(unsafe.SliceData(b), len(b)), 64)
}

// align aligns a day to the frequency, caching the last input.
func (rb *rowBuilder) align(d int32) int32 {
	if d == rb.lastAlignIn && rb.lastAlignOut != math.MinInt32 {
		return rb.lastAlignOut
	}
	a := AlignPeriod(d, rb.s.Frequency)
	rb.lastAlignIn, rb.lastAlignOut = d, a
	return a
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// quote quotes a value for a reason, shortened to keep reasons readable.
func quote(b []byte) string {
	if len(b) > 64 {
		return strconv.Quote(string(b[:64]) + "...")
	}
	return strconv.Quote(string(b))
}

func quoteOrNum(v *field) string {
	switch v.kind {
	case fFloat:
		return strconv.FormatFloat(v.num, 'g', -1, 64)
	case fNumber:
		return string(v.b)
	}
	return quote(v.b)
}

func describe(v *field) string {
	switch v.kind {
	case fBool:
		return string(v.b)
	case fComposite:
		if len(v.b) > 0 && v.b[0] == '[' {
			return "an array"
		}
		return "an object"
	case fFloat:
		return strconv.FormatFloat(v.num, 'g', -1, 64)
	case fDay:
		return FormatPeriod(v.day, Day)
	}
	return quote(v.b)
}

// appendRow appends the checked current row to the builders.
func (rb *rowBuilder) appendRow(row int) {
	if !rb.reserved {
		rb.reserve()
	}
	h := rb.hasher
	h.Begin()
	for i := 1; i <= rb.nDims; i++ {
		b := rb.vals[i].b
		h.Add(b)
		rb.bDims[i-1].BinaryBuilder.Append(b)
	}
	rb.bSeries.Append(h.Sum())
	rb.bRow.Append(int32(row))
	rb.bPeriod.Append(arrow.Date32(rb.day))
	rb.bMeasure.Append(rb.measure)
	for j, b := range rb.bCovs {
		if rb.covValid[j] {
			b.Append(rb.covs[j])
		} else {
			b.AppendNull()
		}
	}
	if rb.bOID != nil {
		if v := rb.vals[rb.iOID]; v.kind != fMissing && len(v.b) > 0 {
			rb.bOID.BinaryBuilder.Append(v.b)
		} else {
			rb.bOID.AppendNull()
		}
	}
	rb.pending++
}

// flush turns the pending rows into a record and checks ctx.
func (rb *rowBuilder) flush(ctx context.Context) error {
	if rb.pending > 0 {
		cols := make([]arrow.Array, 0, rb.schema.NumFields())
		cols = append(cols, rb.bSeries.NewArray(), rb.bRow.NewArray(), rb.bPeriod.NewArray())
		for _, b := range rb.bDims {
			cols = append(cols, b.NewArray())
		}
		cols = append(cols, rb.bMeasure.NewArray())
		for _, b := range rb.bCovs {
			cols = append(cols, b.NewArray())
		}
		if rb.bOID != nil {
			cols = append(cols, rb.bOID.NewArray())
		}
		rec := array.NewRecordBatch(rb.schema, cols, int64(rb.pending))
		for _, c := range cols {
			c.Release()
		}
		rb.batch.Records = append(rb.batch.Records, rec)
		rb.pending = 0
		rb.reserved = false
		rb.hint = 0
	}
	return ctx.Err()
}

// appendRecord flushes the pending rows and appends rec (which must follow
// rb.schema) in chunks of at most chunkRows rows. It retains what it keeps;
// the caller still releases rec.
func (rb *rowBuilder) appendRecord(ctx context.Context, rec arrow.RecordBatch) error {
	if err := rb.flush(ctx); err != nil {
		return err
	}
	n := rec.NumRows()
	if n <= int64(rb.chunkRows) {
		rec.Retain()
		rb.batch.Records = append(rb.batch.Records, rec)
		return nil
	}
	for i := int64(0); i < n; i += int64(rb.chunkRows) {
		rb.batch.Records = append(rb.batch.Records, rec.NewSlice(i, min(n, i+int64(rb.chunkRows))))
	}
	return nil
}
