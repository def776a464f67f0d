package stream

import (
	"fmt"
	"strconv"
	"time"
)

// Frequency is a dataset's period length.
type Frequency string

// Frequencies.
const (
	Day     Frequency = "day"
	Week    Frequency = "week"
	Month   Frequency = "month"
	Quarter Frequency = "quarter"
	Year    Frequency = "year"
)

// ParseFrequency checks s names a frequency.
func ParseFrequency(s string) (Frequency, error) {
	switch f := Frequency(s); f {
	case Day, Week, Month, Quarter, Year:
		return f, nil
	}
	return "", fmt.Errorf("unknown frequency %q: want day, week, month, quarter or year", s)
}

// SeasonLength is the number of periods in one seasonal cycle used by the
// forecasting core: 7 for day (weekly cycle), 52 for week, 12 for month, 4
// for quarter and 1 (no season) for year.
func (f Frequency) SeasonLength() int {
	switch f {
	case Day:
		return 7
	case Week:
		return 52
	case Month:
		return 12
	case Quarter:
		return 4
	}
	return 1
}

// A period is stored as the Arrow date32 of its first day: days since
// 1970-01-01 (UTC). Weeks start on Monday (ISO 8601).

// ParsePeriod parses s in any accepted period form and aligns it down to the
// start of its period under f. Accepted forms: 2024-03-15 (day), 2024-W11
// (ISO week), 2024-03 (month), 2024-Q1 (quarter), 2024 (year) and any RFC
// 3339 date/time (converted to UTC first). It does not allocate on the
// common forms.
func ParsePeriod(s string, f Frequency) (int32, error) {
	d, err := parseDay(s)
	if err != nil {
		return 0, err
	}
	return AlignPeriod(d, f), nil
}

func parseDay(s string) (int32, error) {
	n := len(s)
	if n < 4 {
		return 0, periodErr(s)
	}
	y, ok := digits(s[:4])
	if !ok {
		return 0, periodErr(s)
	}
	if n == 4 {
		return daysFromCivil(y, 1, 1), nil
	}
	if s[4] != '-' || n < 7 {
		return 0, periodErr(s)
	}
	switch s[5] {
	case 'W', 'w':
		w, ok := digits(s[6:])
		if !ok || n != 8 || w < 1 || w > isoWeeksInYear(y) {
			return 0, periodErr(s)
		}
		return isoWeekStart(y, w), nil
	case 'Q', 'q':
		q, ok := digits(s[6:])
		if !ok || n != 7 || q < 1 || q > 4 {
			return 0, periodErr(s)
		}
		return daysFromCivil(y, (q-1)*3+1, 1), nil
	}
	m, ok := digits(s[5:7])
	if !ok || m < 1 || m > 12 {
		return 0, periodErr(s)
	}
	if n == 7 {
		return daysFromCivil(y, m, 1), nil
	}
	if n < 10 || s[7] != '-' {
		return 0, periodErr(s)
	}
	d, ok := digits(s[8:10])
	if !ok || d < 1 || d > daysIn(y, m) {
		return 0, periodErr(s)
	}
	if n == 10 {
		return daysFromCivil(y, m, d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, periodErr(s)
	}
	t = t.UTC()
	return daysFromCivil(t.Year(), int(t.Month()), t.Day()), nil
}

func periodErr(s string) error {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return fmt.Errorf("invalid period %q: want 2024-03-15, 2024-W11, 2024-03, 2024-Q1, 2024 or RFC 3339", s)
}

func digits(s string) (int, bool) {
	if len(s) == 0 {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		v = v*10 + int(c)
	}
	return v, true
}

// AlignPeriod aligns the day d (days since epoch) down to the start of its
// period under f.
func AlignPeriod(d int32, f Frequency) int32 {
	switch f {
	case Week:
		return d - weekday(d)
	case Month:
		y, m, _ := civilFromDays(d)
		return daysFromCivil(y, m, 1)
	case Quarter:
		y, m, _ := civilFromDays(d)
		return daysFromCivil(y, (m-1)/3*3+1, 1)
	case Year:
		y, _, _ := civilFromDays(d)
		return daysFromCivil(y, 1, 1)
	}
	return d
}

// FormatPeriod formats the period starting at day d in the canonical form of
// f: 2024-03-15, 2024-W11, 2024-03, 2024-Q1 or 2024.
func FormatPeriod(d int32, f Frequency) string {
	switch f {
	case Week:
		y, w := isoWeek(d)
		return fmt.Sprintf("%04d-W%02d", y, w)
	case Month:
		y, m, _ := civilFromDays(d)
		return fmt.Sprintf("%04d-%02d", y, m)
	case Quarter:
		y, m, _ := civilFromDays(d)
		return fmt.Sprintf("%04d-Q%d", y, (m-1)/3+1)
	case Year:
		y, _, _ := civilFromDays(d)
		return strconv.Itoa(y)
	}
	y, m, dd := civilFromDays(d)
	return fmt.Sprintf("%04d-%02d-%02d", y, m, dd)
}

// PeriodIndex maps the aligned period start d to a consecutive integer index
// under f (days, weeks, months, quarters or years since the epoch), so that
// consecutive periods differ by one.
func PeriodIndex(d int32, f Frequency) int64 {
	switch f {
	case Week:
		return floorDiv(int64(d)-4, 7) // 1970-01-05 was a Monday
	case Month:
		y, m, _ := civilFromDays(d)
		return int64(y)*12 + int64(m-1)
	case Quarter:
		y, m, _ := civilFromDays(d)
		return int64(y)*4 + int64((m-1)/3)
	case Year:
		y, _, _ := civilFromDays(d)
		return int64(y)
	}
	return int64(d)
}

// PeriodFromIndex is the inverse of PeriodIndex.
func PeriodFromIndex(i int64, f Frequency) int32 {
	switch f {
	case Week:
		return int32(i*7 + 4)
	case Month:
		return daysFromCivil(int(floorDiv(i, 12)), int(i-floorDiv(i, 12)*12)+1, 1)
	case Quarter:
		return daysFromCivil(int(floorDiv(i, 4)), int(i-floorDiv(i, 4)*4)*3+1, 1)
	case Year:
		return daysFromCivil(int(i), 1, 1)
	}
	return int32(i)
}

// PeriodTime returns the period start d as a UTC time.
func PeriodTime(d int32) time.Time {
	return time.Unix(int64(d)*86400, 0).UTC()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// weekday returns 0 for Monday .. 6 for Sunday.
func weekday(d int32) int32 {
	return int32(floorDiv(int64(d)+3, 7)*-7 + int64(d) + 3)
}

func isoWeekStart(y, w int) int32 {
	jan4 := daysFromCivil(y, 1, 4)
	return jan4 - weekday(jan4) + int32(w-1)*7
}

func isoWeek(d int32) (year, week int) {
	thu := d - weekday(d) + 3
	y, _, _ := civilFromDays(thu)
	return y, int(thu-daysFromCivil(y, 1, 1))/7 + 1
}

func isoWeeksInYear(y int) int {
	_, w := isoWeek(daysFromCivil(y, 12, 28))
	return w
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil converts a proleptic Gregorian date to days since 1970-01-01
// (H. Hinnant's algorithm).
func daysFromCivil(y, m, d int) int32 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int32(era*146097 + doe - 719468)
}

func civilFromDays(days int32) (y, m, d int) {
	z := int(days) + 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}
