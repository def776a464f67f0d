package stream

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
)

// Names of the two leading columns of every validated record.
const (
	ColSeriesID = "_series_id"
	ColRow      = "_row"
)

// Fixed column positions in a validated record (see package doc).
const (
	IdxSeriesID = 0
	IdxRow      = 1
	IdxPeriod   = 2
	// IdxFirstDimension is the index of the first dimension column.
	IdxFirstDimension = 3
)

// IdxMeasure returns the column index of the measure in s's records.
func (s *Schema) IdxMeasure() int { return IdxFirstDimension + len(s.Dimensions) }

// IdxCovariate returns the column index of covariate i.
func (s *Schema) IdxCovariate(i int) int { return s.IdxMeasure() + 1 + i }

// IdxObjectID returns the column index of the object id, or -1.
func (s *Schema) IdxObjectID() int {
	if s.ObjectID == "" {
		return -1
	}
	return s.IdxMeasure() + 1 + len(s.Covariates)
}

// ArrowSchema returns the Arrow schema of s's validated records (see the
// package doc for the layout).
func (s *Schema) ArrowSchema() *arrow.Schema {
	fields := make([]arrow.Field, 0, 5+len(s.Dimensions)+len(s.Covariates))
	fields = append(fields,
		arrow.Field{Name: ColSeriesID, Type: arrow.PrimitiveTypes.Uint64},
		arrow.Field{Name: ColRow, Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: s.Period, Type: arrow.FixedWidthTypes.Date32},
	)
	for _, d := range s.Dimensions {
		fields = append(fields, arrow.Field{Name: d, Type: arrow.BinaryTypes.String})
	}
	fields = append(fields, arrow.Field{Name: s.Measure, Type: arrow.PrimitiveTypes.Float64})
	for _, c := range s.Covariates {
		fields = append(fields, arrow.Field{Name: c, Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	if s.ObjectID != "" {
		fields = append(fields, arrow.Field{Name: s.ObjectID, Type: arrow.BinaryTypes.String, Nullable: true})
	}
	return arrow.NewSchema(fields, nil)
}

// RowError is one rejected row: its 1-based row number in the request body
// (data rows, not counting a CSV header), the row's object id if it had one,
// the field at fault ("" for the whole row) and a reason a person can act on.
type RowError struct {
	Row      int    `json:"row"`
	ObjectID string `json:"object_id,omitempty"`
	Field    string `json:"field,omitempty"`
	Reason   string `json:"reason"`
}

// Error implements error.
func (e RowError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("row %d: %s", e.Row, e.Reason)
	}
	return fmt.Sprintf("row %d: field %s: %s", e.Row, e.Field, e.Reason)
}

// SyntaxError means the request body is not well-formed in its format; the
// whole request is refused. Line and Column are 1-based positions in the
// body where known (0 when not), Row the data row where known.
type SyntaxError struct {
	Format Format
	Line   int
	Column int
	Row    int
	Field  string
	Msg    string
}

// Error implements error.
func (e *SyntaxError) Error() string {
	s := fmt.Sprintf("malformed %s", e.Format)
	if e.Line > 0 {
		s += fmt.Sprintf(" at line %d", e.Line)
		if e.Column > 0 {
			s += fmt.Sprintf(", column %d", e.Column)
		}
	} else if e.Row > 0 {
		s += fmt.Sprintf(" at row %d", e.Row)
	}
	if e.Field != "" {
		s += fmt.Sprintf(", field %s", e.Field)
	}
	return s + ": " + e.Msg
}

// Batch is the result of decoding one request body: validated records in
// s.ArrowSchema() layout plus the rejected rows. The caller owns the records
// and must call Release once.
type Batch struct {
	// Records hold the accepted rows in input order, at most
	// DecodeConfig.ChunkRows rows each.
	Records []arrow.RecordBatch
	// Rejected lists every rejected row, in input order.
	Rejected []RowError
	// RowsIn counts the data rows read (accepted + rejected).
	RowsIn int
	// Bytes counts the body bytes read (after decompression).
	Bytes int64
}

// Accepted returns the number of accepted rows.
func (b *Batch) Accepted() int {
	n := 0
	for _, r := range b.Records {
		n += int(r.NumRows())
	}
	return n
}

// Release releases every record; it is safe to call more than once.
func (b *Batch) Release() {
	for _, r := range b.Records {
		r.Release()
	}
	b.Records = nil
}
