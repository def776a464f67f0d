package stream

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Limits on schemas; they keep keys and node metadata small.
const (
	// MaxDimensions is the largest number of key dimensions a dataset may have.
	MaxDimensions = 16
	// MaxCovariates is the largest number of covariates a dataset may have.
	MaxCovariates = 32
)

// DuplicatePolicy says what happens when a (series, period) is written twice.
type DuplicatePolicy string

// Duplicate policies.
const (
	// DuplicatesLast keeps the value written last (default).
	DuplicatesLast DuplicatePolicy = "last"
	// DuplicatesSum adds the measure of every write for the same period.
	DuplicatesSum DuplicatePolicy = "sum"
)

// Rule is the validation rule of one field. The zero Rule accepts anything
// of the field's type.
type Rule struct {
	// Required rejects rows where the field is missing or empty. Period,
	// dimensions and measure are always required.
	Required bool `json:"required,omitempty"`
	// Min and Max bound numeric fields (measure, covariates), inclusive.
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// Allowed lists the only values a string field (dimension, object id)
	// may take; empty means any.
	Allowed []string `json:"allowed,omitempty"`
}

// Schema is a dataset's schema as given to POST /v1/datasets (see DESIGN.md
// "Contract details"). A Schema is immutable once validated; it is safe for
// concurrent readers.
type Schema struct {
	Name       string          `json:"name"`
	Frequency  Frequency       `json:"frequency"`
	Period     string          `json:"period"`
	Dimensions []string        `json:"dimensions"`
	Measure    string          `json:"measure"`
	Covariates []string        `json:"covariates,omitempty"`
	ObjectID   string          `json:"object_id,omitempty"`
	Rules      map[string]Rule `json:"rules,omitempty"`
	Duplicates DuplicatePolicy `json:"duplicates,omitempty"`
	// Tracking turns data-flow tracking on for this dataset's
	// transactions; nil means on. Off, the dataset's ingests leave no
	// tracking records (transactions, stage blocks, rejected rows, object
	// index, forecast blocks, statistics): for high-volume feeds whose
	// journey nobody queries. The ingest response still reports rejected
	// rows.
	Tracking *bool `json:"tracking,omitempty"`
	// TrackObjects turns the tracking object index on for this dataset; nil
	// means on when ObjectID is set and Tracking is on.
	TrackObjects *bool `json:"track_objects,omitempty"`
	// Forecast configures the dataset's forecasts; nil means the defaults
	// (see ForecastSettings).
	Forecast *ForecastConfig `json:"forecast,omitempty"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
var columnRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)

// ErrInvalidSchema is wrapped by every error Schema.Validate returns.
var ErrInvalidSchema = errors.New("stream: invalid schema")

func schemaErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidSchema, fmt.Sprintf(format, args...))
}

// Normalize fills defaults (duplicates "last") in place.
func (s *Schema) Normalize() {
	if s.Duplicates == "" {
		s.Duplicates = DuplicatesLast
	}
}

// Validate reports the first problem with s, naming the field. It wraps
// ErrInvalidSchema.
func (s *Schema) Validate() error {
	if !nameRE.MatchString(s.Name) {
		return schemaErr("name %q: want 1-64 letters, digits, '_', '.', '-', starting with a letter or digit", s.Name)
	}
	if _, err := ParseFrequency(string(s.Frequency)); err != nil {
		return schemaErr("frequency: %v", err)
	}
	if s.Period == "" {
		return schemaErr("period: column name is required")
	}
	if s.Measure == "" {
		return schemaErr("measure: column name is required")
	}
	if len(s.Dimensions) > MaxDimensions {
		return schemaErr("dimensions: %d given, at most %d", len(s.Dimensions), MaxDimensions)
	}
	if len(s.Covariates) > MaxCovariates {
		return schemaErr("covariates: %d given, at most %d", len(s.Covariates), MaxCovariates)
	}
	switch s.Duplicates {
	case "", DuplicatesLast, DuplicatesSum:
	default:
		return schemaErr("duplicates %q: want last or sum", s.Duplicates)
	}
	seen := map[string]string{}
	check := func(role, col string) error {
		if !columnRE.MatchString(col) {
			return schemaErr("%s %q: want 1-64 letters, digits, '_', '.', ':', '-', not starting with '_'", role, col)
		}
		if prev, ok := seen[col]; ok {
			return schemaErr("%s %q: column already used as %s", role, col, prev)
		}
		seen[col] = role
		return nil
	}
	if err := check("period", s.Period); err != nil {
		return err
	}
	for _, d := range s.Dimensions {
		if err := check("dimension", d); err != nil {
			return err
		}
	}
	if err := check("measure", s.Measure); err != nil {
		return err
	}
	for _, c := range s.Covariates {
		if err := check("covariate", c); err != nil {
			return err
		}
	}
	if s.ObjectID != "" {
		if err := check("object_id", s.ObjectID); err != nil {
			return err
		}
	}
	if s.TrackObjects != nil && *s.TrackObjects {
		if s.ObjectID == "" {
			return schemaErr("track_objects: true needs an object_id column")
		}
		if !s.Tracks() {
			return schemaErr("track_objects: true needs tracking on (tracking: false turns every tracking record off)")
		}
	}
	if s.Forecast != nil {
		if err := s.Forecast.Validate(); err != nil {
			return err
		}
	}
	fields := make([]string, 0, len(s.Rules))
	for f := range s.Rules {
		fields = append(fields, f)
	}
	slices.Sort(fields)
	for _, f := range fields {
		r := s.Rules[f]
		role, ok := seen[f]
		if !ok {
			return schemaErr("rules.%s: no such column in the schema", f)
		}
		numeric := role == "measure" || role == "covariate"
		if (r.Min != nil || r.Max != nil) && !numeric {
			return schemaErr("rules.%s: min/max apply only to the measure and covariates, %s is a %s", f, f, role)
		}
		if r.Min != nil && r.Max != nil && *r.Min > *r.Max {
			return schemaErr("rules.%s: min %g is above max %g", f, *r.Min, *r.Max)
		}
		if len(r.Allowed) > 0 && (numeric || role == "period") {
			return schemaErr("rules.%s: allowed values apply only to dimensions and the object id, %s is a %s", f, f, role)
		}
	}
	return nil
}

// Columns returns every input column name of s in batch order (period,
// dimensions, measure, covariates, object id).
func (s *Schema) Columns() []string {
	cols := make([]string, 0, 3+len(s.Dimensions)+len(s.Covariates))
	cols = append(cols, s.Period)
	cols = append(cols, s.Dimensions...)
	cols = append(cols, s.Measure)
	cols = append(cols, s.Covariates...)
	if s.ObjectID != "" {
		cols = append(cols, s.ObjectID)
	}
	return cols
}

// Tracks reports whether this dataset's transactions are tracked.
func (s *Schema) Tracks() bool { return s.Tracking == nil || *s.Tracking }

// TracksObjects reports whether rows of this dataset go into the tracking
// object index.
func (s *Schema) TracksObjects() bool {
	if s.ObjectID == "" || !s.Tracks() {
		return false
	}
	return s.TrackObjects == nil || *s.TrackObjects
}

// String returns a short description for logs.
func (s *Schema) String() string {
	return fmt.Sprintf("%s(%s; %s)", s.Name, s.Frequency, strings.Join(s.Dimensions, ","))
}
