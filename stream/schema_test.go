package stream

import (
	"errors"
	"strings"
	"testing"
)

func validSchema() *Schema {
	zero := 0.0
	return &Schema{
		Name: "exports", Frequency: Month, Period: "period",
		Dimensions: []string{"product", "region"}, Measure: "qty",
		Covariates: []string{"price"}, ObjectID: "object_id",
		Rules: map[string]Rule{"qty": {Required: true, Min: &zero}, "region": {Allowed: []string{"EU-DE"}}},
	}
}

func TestSchemaValidate(t *testing.T) {
	one, two := 1.0, 2.0
	tests := []struct {
		name string
		edit func(s *Schema)
		want string // substring of the error, "" for valid
	}{
		{"valid", func(s *Schema) {}, ""},
		{"no covariates or object id", func(s *Schema) { s.Covariates, s.ObjectID, s.Rules = nil, "", nil }, ""},
		{"bad name", func(s *Schema) { s.Name = "_x" }, "name"},
		{"bad frequency", func(s *Schema) { s.Frequency = "hour" }, "frequency"},
		{"no period", func(s *Schema) { s.Period = "" }, "period: column name is required"},
		{"no measure", func(s *Schema) { s.Measure = "" }, "measure: column name is required"},
		{"reserved column", func(s *Schema) { s.Dimensions[0] = "_row" }, `dimension "_row"`},
		{"duplicate column", func(s *Schema) { s.Covariates = []string{"product"} }, "already used as dimension"},
		{"too many dimensions", func(s *Schema) { s.Dimensions = make([]string, MaxDimensions+1) }, "dimensions"},
		{"bad duplicates", func(s *Schema) { s.Duplicates = "first" }, "duplicates"},
		{"rule on unknown column", func(s *Schema) { s.Rules["nope"] = Rule{} }, "rules.nope"},
		{"min on dimension", func(s *Schema) { s.Rules["region"] = Rule{Min: &one} }, "min/max apply only"},
		{"min above max", func(s *Schema) { s.Rules["qty"] = Rule{Min: &two, Max: &one} }, "above max"},
		{"allowed on measure", func(s *Schema) { s.Rules["qty"] = Rule{Allowed: []string{"1"}} }, "allowed values apply only"},
		{"tracking off", func(s *Schema) { s.Tracking = ptrBool(false) }, ""},
		{"track objects without object id", func(s *Schema) { s.ObjectID, s.TrackObjects = "", ptrBool(true) }, "needs an object_id column"},
		{"track objects with tracking off", func(s *Schema) { s.Tracking, s.TrackObjects = ptrBool(false), ptrBool(true) }, "needs tracking on"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := validSchema()
			tc.edit(s)
			err := s.Validate()
			if tc.want == "" {
				if err != nil {
					t.Errorf("got %v, want no error", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidSchema) {
				t.Errorf("got %v, want an ErrInvalidSchema containing %q", err, tc.want)
			}
		})
	}
}

func TestSchemaLayout(t *testing.T) {
	s := validSchema()
	as := s.ArrowSchema()
	want := []string{ColSeriesID, ColRow, "period", "product", "region", "qty", "price", "object_id"}
	if as.NumFields() != len(want) {
		t.Fatalf("got %d fields, want %d", as.NumFields(), len(want))
	}
	for i, n := range want {
		if got := as.Field(i).Name; got != n {
			t.Errorf("field %d: got %s, want %s", i, got, n)
		}
	}
	if s.IdxMeasure() != 5 || s.IdxCovariate(0) != 6 || s.IdxObjectID() != 7 {
		t.Errorf("got indexes %d %d %d, want 5 6 7", s.IdxMeasure(), s.IdxCovariate(0), s.IdxObjectID())
	}
}

func TestSeriesHasher(t *testing.T) {
	long := strings.Repeat("x", 2000)
	h := NewSeriesHasher("exports")
	for _, dims := range [][]string{nil, {""}, {"P1", "EU-DE"}, {"ab", "c"}, {"a", "bc"}, {long, "y", long}} {
		h.Begin()
		for _, d := range dims {
			h.Add([]byte(d))
		}
		if got, want := h.Sum(), SeriesID("exports", dims); got != want {
			t.Errorf("%q: got %x, want %x", dims, got, want)
		}
	}
	if SeriesID("d", []string{"ab", "c"}) == SeriesID("d", []string{"a", "bc"}) {
		t.Error("got equal ids for (ab,c) and (a,bc), want different")
	}
}

func ptrBool(b bool) *bool { return &b }

func TestSchemaTracks(t *testing.T) {
	tests := []struct {
		name                   string
		tracking, trackObjects *bool
		objectID               string
		tracks, tracksObjects  bool
	}{
		{"defaults", nil, nil, "object_id", true, true},
		{"no object id", nil, nil, "", true, false},
		{"objects off", nil, ptrBool(false), "object_id", true, false},
		{"tracking off", ptrBool(false), nil, "object_id", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := validSchema()
			s.Tracking, s.TrackObjects, s.ObjectID = tc.tracking, tc.trackObjects, tc.objectID
			if tc.objectID == "" {
				delete(s.Rules, "object_id")
			}
			if got := s.Tracks(); got != tc.tracks {
				t.Errorf("Tracks: got %v, want %v", got, tc.tracks)
			}
			if got := s.TracksObjects(); got != tc.tracksObjects {
				t.Errorf("TracksObjects: got %v, want %v", got, tc.tracksObjects)
			}
		})
	}
}
