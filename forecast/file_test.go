package forecast

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestForecastCSV(t *testing.T) {
	var in strings.Builder
	in.WriteString("y,id,t\n")
	// rows out of order; series b uses period strings
	for i := 23; i >= 0; i-- {
		fmt.Fprintf(&in, "%g,a,%d\n", 10+float64(i), i+1)
		fmt.Fprintf(&in, "%g,b,%d-%02d\n", 5+float64(i%4), 2020+i/12, i%12+1)
	}
	var out bytes.Buffer
	st, err := ForecastCSV(t.Context(), strings.NewReader(in.String()), &out, FileOptions{Horizon: 3, SeasonLength: 4, Model: "drift"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Series != 2 || st.Points != 48 || st.Rows != 6 {
		t.Errorf("stats: got %+v, want 2 series, 48 points, 6 rows", st)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"id", "step", "mean", "lo_80", "hi_80", "lo_95", "hi_95", "model"}
	if strings.Join(rows[0], ",") != strings.Join(want, ",") {
		t.Errorf("header: got %v, want %v", rows[0], want)
	}
	// series a is 10..33 in t order: drift forecasts 34, 35, 36.
	for k, wantMean := range []string{"34", "35", "36"} {
		if r := rows[1+k]; r[0] != "a" || r[2] != wantMean {
			t.Errorf("row %d: got %v, want a with mean %s", k+1, r, wantMean)
		}
	}
}

func TestForecastCSVErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		line     int
		field    string
	}{
		{"missing column", "id,t\na,1\n", 1, "y"},
		{"non-numeric y", "id,t,y\na,1,3\na,2,x\n", 3, "y"},
		{"duplicate", "id,t,y\na,1,3\nb,1,3\na,1,4\n", 4, "t"},
		{"empty t", "id,t,y\na,,3\n", 2, "t"},
		{"short row", "id,t,y\na,1\n", 2, "y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ForecastCSV(t.Context(), strings.NewReader(tc.in), &bytes.Buffer{}, FileOptions{Horizon: 2}, nil)
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("got %v, want *InputError", err)
			}
			if ie.Line != tc.line || ie.Field != tc.field {
				t.Errorf("got line %d field %s (%v), want line %d field %s", ie.Line, ie.Field, err, tc.line, tc.field)
			}
		})
	}
}
