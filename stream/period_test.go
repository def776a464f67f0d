package stream

import (
	"testing"
	"time"
)

func day(t *testing.T, s string) int32 {
	t.Helper()
	tm, err := time.Parse("2006-01-02", s)
	if err != nil {
		t.Fatal(err)
	}
	return int32(tm.Unix() / 86400)
}

func TestParsePeriod(t *testing.T) {
	tests := []struct {
		in   string
		f    Frequency
		want string // day of the aligned period start, "" for an error
	}{
		{"2024-03-15", Day, "2024-03-15"},
		{"2024-03-15", Week, "2024-03-11"},
		{"2024-03-15", Month, "2024-03-01"},
		{"2024-03-15", Quarter, "2024-01-01"},
		{"2024-03-15", Year, "2024-01-01"},
		{"2024-W11", Week, "2024-03-11"},
		{"2024-w01", Day, "2024-01-01"},
		{"2020-W53", Week, "2020-12-28"},
		{"2021-W01", Week, "2021-01-04"},
		{"2026-W01", Week, "2025-12-29"}, // ISO week 1 starts in the previous year
		{"2021-W53", Week, ""},           // 2021 has 52 ISO weeks
		{"2024-W00", Week, ""},
		{"2024-03", Month, "2024-03-01"},
		{"2024-03", Quarter, "2024-01-01"},
		{"2024-Q1", Quarter, "2024-01-01"},
		{"2024-Q4", Month, "2024-10-01"},
		{"2024-Q5", Quarter, ""},
		{"2024", Year, "2024-01-01"},
		{"2024-02-29", Day, "2024-02-29"},
		{"2023-02-29", Day, ""},
		{"1900-02-29", Day, ""},
		{"2000-02-29", Day, "2000-02-29"},
		{"2024-03-31T23:30:00-02:00", Day, "2024-04-01"}, // converted to UTC first
		{"2024-12-31T12:00:00.123Z", Week, "2024-12-30"},
		{"2025-01-01T00:00:00Z", Week, "2024-12-30"},
		{"2024-13", Month, ""},
		{"2024-00-10", Day, ""},
		{"24-01", Month, ""},
		{"2024-1", Month, ""},
		{"2024/01/01", Day, ""},
		{"2024-03-15T", Day, ""},
		{"", Day, ""},
		{"abcd", Year, ""},
	}
	for _, tc := range tests {
		t.Run(string(tc.f)+"/"+tc.in, func(t *testing.T) {
			got, err := ParsePeriod(tc.in, tc.f)
			if tc.want == "" {
				if err == nil {
					t.Errorf("got %s, want an error", FormatPeriod(got, Day))
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want %s", err, tc.want)
			}
			if want := day(t, tc.want); got != want {
				t.Errorf("got %s, want %s", FormatPeriod(got, Day), tc.want)
			}
		})
	}
}

func TestParsePeriodAllocs(t *testing.T) {
	for _, in := range []string{"2024-03-15", "2024-W11", "2024-03", "2024-Q1", "2024"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = ParsePeriod(in, Month) }); n != 0 {
			t.Errorf("%s: got %v allocs, want 0", in, n)
		}
	}
}

func TestFormatPeriod(t *testing.T) {
	tests := []struct {
		day  string
		f    Frequency
		want string
	}{
		{"2024-03-15", Day, "2024-03-15"},
		{"2024-03-11", Week, "2024-W11"},
		{"2024-12-30", Week, "2025-W01"},
		{"2021-01-01", Week, "2020-W53"},
		{"2024-03-01", Month, "2024-03"},
		{"2024-04-01", Quarter, "2024-Q2"},
		{"2024-01-01", Year, "2024"},
	}
	for _, tc := range tests {
		if got := FormatPeriod(AlignPeriod(day(t, tc.day), tc.f), tc.f); got != tc.want {
			t.Errorf("FormatPeriod(%s, %s): got %s, want %s", tc.day, tc.f, got, tc.want)
		}
	}
}

// TestPeriodRoundTrips walks every day of 1900-2100 and checks alignment,
// FormatPeriod/ParsePeriod and PeriodIndex/PeriodFromIndex for every
// frequency.
func TestPeriodRoundTrips(t *testing.T) {
	first, last := day(t, "1900-01-01"), day(t, "2100-12-31")
	for _, f := range []Frequency{Day, Week, Month, Quarter, Year} {
		prevIdx := int64(0)
		prevStart := int32(0)
		for d := first; d <= last; d++ {
			start := AlignPeriod(d, f)
			if start > d || AlignPeriod(start, f) != start {
				t.Fatalf("%s: AlignPeriod(%s) = %s is not an aligned start at or before it", f, FormatPeriod(d, Day), FormatPeriod(start, Day))
			}
			if start == prevStart && d != first {
				continue
			}
			s := FormatPeriod(start, f)
			got, err := ParsePeriod(s, f)
			if err != nil || got != start {
				t.Fatalf("%s: ParsePeriod(FormatPeriod(%s)) = %s, %v, want %s", f, FormatPeriod(start, Day), FormatPeriod(got, Day), err, FormatPeriod(start, Day))
			}
			idx := PeriodIndex(start, f)
			if back := PeriodFromIndex(idx, f); back != start {
				t.Fatalf("%s: PeriodFromIndex(PeriodIndex(%s)) = %s", f, s, FormatPeriod(back, Day))
			}
			if d != first && idx != prevIdx+1 {
				t.Fatalf("%s: got index %d after %d for %s, want consecutive", f, idx, prevIdx, s)
			}
			if f == Week && weekday(start) != 0 {
				t.Fatalf("week %s starts on weekday %d, want Monday", s, weekday(start))
			}
			prevIdx, prevStart = idx, start
		}
	}
}

func TestParseFrequency(t *testing.T) {
	for _, s := range []string{"day", "week", "month", "quarter", "year"} {
		if f, err := ParseFrequency(s); err != nil || string(f) != s {
			t.Errorf("ParseFrequency(%q): got %q, %v", s, f, err)
		}
	}
	for _, s := range []string{"", "Day", "hour"} {
		if _, err := ParseFrequency(s); err == nil {
			t.Errorf("ParseFrequency(%q): got no error, want one", s)
		}
	}
}
