// Package sample generates the deterministic synthetic export-demand data
// used by `demandflow demo`, tests and benchmarks: products x markets x
// months with trend, seasonality, noise, some intermittent series and a few
// deliberately bad rows.
package sample

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/demandflow/demandflow/stream"
)

// Markets are the sample's market codes (the allowed values of "market").
var Markets = []string{"EU-DE", "EU-FR", "EU-IT", "EU-ES", "EU-NL", "EU-PL", "UK", "US", "CA", "JP", "CN", "BR"}

// Config shapes the generated data.
type Config struct {
	Products int    // default 500
	Markets  int    // default 12 (at most len(Markets))
	Months   int    // default 60
	Seed     uint64 // default 42
	// StartYear and StartMonth give the first period. Default 2020-01.
	StartYear, StartMonth int
	// BadRows is how many deliberately invalid rows are mixed in. Default
	// 12; -1 means none.
	BadRows int
}

// DefaultConfig is the demo's data set: 500 x 12 x 60 = 360,000 rows.
func DefaultConfig() Config {
	return Config{Products: 500, Markets: 12, Months: 60, Seed: 42, StartYear: 2020, StartMonth: 1, BadRows: 12}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Products == 0 {
		c.Products = d.Products
	}
	if c.Markets == 0 || c.Markets > len(Markets) {
		c.Markets = d.Markets
	}
	if c.Months == 0 {
		c.Months = d.Months
	}
	if c.Seed == 0 {
		c.Seed = d.Seed
	}
	if c.StartYear == 0 {
		c.StartYear, c.StartMonth = d.StartYear, d.StartMonth
	}
	if c.BadRows == 0 {
		c.BadRows = d.BadRows
	}
	return c
}

// Schema returns the sample dataset's schema under the given name.
func Schema(name string) stream.Schema {
	zero := 0.0
	return stream.Schema{
		Name: name, Frequency: stream.Month, Period: "period",
		Dimensions: []string{"product", "market"}, Measure: "qty",
		Covariates: []string{"price"}, ObjectID: "object_id",
		Rules: map[string]stream.Rule{
			"qty":    {Required: true, Min: &zero},
			"price":  {Min: &zero},
			"market": {Allowed: Markets},
		},
		Duplicates: stream.DuplicatesLast,
	}
}

// Header is the column order of Rows.
var Header = []string{"period", "product", "market", "qty", "price", "object_id"}

// Rows returns every row in period-major order, as strings in Header order.
// Row i of the result is deterministic for a given Config. The bad rows
// replace good ones at fixed positions; BadIndexes lists them.
func (c Config) Rows() (rows [][]string, bad []int) {
	c = c.withDefaults()
	rng := rand.New(rand.NewPCG(c.Seed, 0x5eed))
	type prod struct {
		level, trend, amp, phase, noise float64
		intermittent                    bool
	}
	prods := make([]prod, c.Products)
	for i := range prods {
		prods[i] = prod{
			level:        math.Exp(3 + 2*rng.Float64()),
			trend:        (rng.Float64() - 0.3) * 0.02,
			amp:          0.1 + 0.4*rng.Float64(),
			phase:        rng.Float64() * 2 * math.Pi,
			noise:        0.05 + 0.15*rng.Float64(),
			intermittent: rng.Float64() < 0.1,
		}
	}
	mk := make([]float64, c.Markets)
	for i := range mk {
		mk[i] = 0.3 + 1.4*rng.Float64()
	}
	rows = make([][]string, 0, c.Products*c.Markets*c.Months)
	for t := 0; t < c.Months; t++ {
		m0 := c.StartMonth - 1 + t
		period := fmt.Sprintf("%04d-%02d", c.StartYear+m0/12, m0%12+1)
		for p := range prods {
			pr := prods[p]
			for m := 0; m < c.Markets; m++ {
				var q float64
				if pr.intermittent {
					if rng.Float64() < 0.25 {
						q = float64(1 + rng.IntN(int(2+pr.level/20)))
					}
				} else {
					base := pr.level * mk[m] * (1 + pr.trend*float64(t))
					season := 1 + pr.amp*math.Sin(2*math.Pi*float64(m0%12)/12+pr.phase)
					q = math.Max(0, math.Round(base*season*(1+pr.noise*rng.NormFloat64())))
				}
				price := 5 + float64(p%50) + 0.01*float64(t)
				rows = append(rows, []string{
					period, fmt.Sprintf("P%04d", p), Markets[m],
					strconv.FormatFloat(q, 'f', -1, 64), strconv.FormatFloat(price, 'f', 2, 64),
					fmt.Sprintf("o-%s-%04d-%s", period, p, Markets[m]),
				})
			}
		}
	}
	if c.BadRows > 0 && len(rows) > 0 {
		kinds := []func(r []string){
			func(r []string) { r[3] = "-5" },      // below min
			func(r []string) { r[0] = "2021-13" }, // bad period
			func(r []string) { r[2] = "XX-YY" },   // market not allowed
			func(r []string) { r[1] = "" },        // missing dimension
			func(r []string) { r[3] = "n/a" },     // not a number
			func(r []string) { r[4] = "-1" },      // covariate below min
		}
		step := len(rows) / c.BadRows
		for i := 0; i < c.BadRows; i++ {
			idx := i*step + step/2
			kinds[i%len(kinds)](rows[idx])
			bad = append(bad, idx)
		}
	}
	return rows, bad
}

// WriteCSV writes header and rows as CSV (no quoting needed for sample
// values, but commas and quotes are escaped anyway).
func WriteCSV(w io.Writer, header []string, rows [][]string) error {
	var b strings.Builder
	line := func(rec []string) {
		for i, f := range rec {
			if i > 0 {
				b.WriteByte(',')
			}
			if strings.ContainsAny(f, ",\"\n\r") {
				b.WriteString(`"` + strings.ReplaceAll(f, `"`, `""`) + `"`)
			} else {
				b.WriteString(f)
			}
		}
		b.WriteByte('\n')
	}
	line(header)
	for _, r := range rows {
		line(r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteNDJSON writes rows as NDJSON objects; numeric columns (qty, price)
// are written as JSON numbers when they parse as numbers.
func WriteNDJSON(w io.Writer, header []string, rows [][]string) error {
	var b strings.Builder
	for _, r := range rows {
		b.WriteByte('{')
		for i, f := range r {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(header[i]))
			b.WriteByte(':')
			if (header[i] == "qty" || header[i] == "price") && isNumber(f) {
				b.WriteString(f)
			} else {
				b.WriteString(strconv.Quote(f))
			}
		}
		b.WriteString("}\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil && s != "" && !strings.ContainsAny(s, "nNiI")
}
