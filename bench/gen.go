package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/demandflow/demandflow/client"
)

// Markets are the generated market codes (the allowed values of "market").
var Markets = []string{"EU-DE", "EU-FR", "EU-IT", "EU-ES", "EU-NL", "EU-PL", "UK", "US", "CA", "JP", "CN", "BR"}

// Header is the column order of generated rows.
var Header = []string{"period", "product", "market", "qty", "price", "object_id"}

// Schema is the schema of the dataset generated rows go into: monthly
// demand by product and market, with a price covariate and object ids.
func Schema(name string) client.Schema {
	zero := 0.0
	return client.Schema{
		Name: name, Frequency: "month", Period: "period",
		Dimensions: []string{"product", "market"}, Measure: "qty",
		Covariates: []string{"price"}, ObjectID: "object_id",
		Rules: map[string]client.Rule{
			"qty":    {Required: true, Min: &zero},
			"price":  {Min: &zero},
			"market": {Allowed: Markets},
		},
		Duplicates: "last",
	}
}

// Row is one generated demand observation.
type Row struct {
	// Year and Month give the period (Month 1..12).
	Year, Month int
	Product     int // product number, written "P%05d"
	Market      int // index into Markets
	Qty         float64
	Price       float64
	// ID is the global row number, written as the object id "b-<ID>".
	ID int64
}

// Period returns the row's period as "YYYY-MM".
func (r *Row) Period() string { return fmt.Sprintf("%04d-%02d", r.Year, r.Month) }

// ProductCode returns the product as written ("P00042").
func (r *Row) ProductCode() string { return fmt.Sprintf("P%05d", r.Product) }

// ObjectID returns the row's object id.
func (r *Row) ObjectID() string { return "b-" + strconv.FormatInt(r.ID, 10) }

// Generator makes deterministic, realistic demand rows: products x markets
// x months with a per-product level, trend, yearly season and noise, some
// intermittent products, and prices by product. Row i is the same for a
// given Seed whatever order batches are generated in, so concurrent
// workers produce a reproducible data set.
type Generator struct {
	Seed     uint64 // default 1
	Products int    // default 2000
	Months   int    // default 120, from 2015-01
	prods    []product
}

type product struct {
	level, trend, amp, phase, noise, price float64
	intermittent                           bool
}

// NewGenerator returns a Generator; zero fields take their defaults.
func NewGenerator(seed uint64, products, months int) *Generator {
	if seed == 0 {
		seed = 1
	}
	if products <= 0 {
		products = 2000
	}
	if months <= 0 {
		months = 120
	}
	g := &Generator{Seed: seed, Products: products, Months: months}
	rng := rand.New(rand.NewPCG(seed, 0xbe7c4))
	g.prods = make([]product, products)
	for i := range g.prods {
		g.prods[i] = product{
			level: math.Exp(2 + 3*rng.Float64()), trend: (rng.Float64() - 0.3) * 0.02,
			amp: 0.1 + 0.4*rng.Float64(), phase: rng.Float64() * 2 * math.Pi,
			noise: 0.05 + 0.2*rng.Float64(), price: math.Round((2+98*rng.Float64())*100) / 100,
			intermittent: rng.Float64() < 0.15,
		}
	}
	return g
}

// Rows appends rows first..first+n-1 to dst and returns it. Row i walks
// markets fastest, then products, then months, and wraps around after
// Products x Markets x Months rows (later rows then overwrite earlier
// observations under the "last" duplicate policy).
func (g *Generator) Rows(dst []Row, first int64, n int) []Row {
	rng := rand.New(rand.NewPCG(g.Seed, uint64(first)))
	nm := int64(len(Markets))
	cells := int64(g.Products) * nm * int64(g.Months)
	for k := range int64(n) {
		i := first + k
		c := i % cells
		m := int(c % nm)
		p := int(c / nm % int64(g.Products))
		t := int(c / nm / int64(g.Products))
		pr := g.prods[p]
		var q float64
		if pr.intermittent {
			if rng.Float64() < 0.3 {
				q = float64(1 + rng.IntN(int(2+pr.level/10)))
			}
		} else {
			base := pr.level * (0.4 + 0.1*float64(m)) * (1 + pr.trend*float64(t))
			season := 1 + pr.amp*math.Sin(2*math.Pi*float64(t%12)/12+pr.phase)
			q = math.Max(0, math.Round(base*season*(1+pr.noise*rng.NormFloat64())))
		}
		dst = append(dst, Row{Year: 2015 + t/12, Month: t%12 + 1, Product: p, Market: m, Qty: q,
			Price: math.Round((pr.price*(1+0.002*float64(t)))*100) / 100, ID: i})
	}
	return dst
}

// Encoder appends the encoding of rows to dst (a reused buffer, possibly
// non-empty: append) and returns it.
type Encoder func(dst []byte, rows []Row) ([]byte, error)

// EncodeNDJSON is the NDJSON Encoder.
func EncodeNDJSON(dst []byte, rows []Row) ([]byte, error) {
	for i := range rows {
		r := &rows[i]
		dst = fmt.Appendf(dst, `{"period":"%04d-%02d","product":"P%05d","market":"%s","qty":`, r.Year, r.Month, r.Product, Markets[r.Market])
		dst = strconv.AppendFloat(dst, r.Qty, 'f', -1, 64)
		dst = append(dst, `,"price":`...)
		dst = strconv.AppendFloat(dst, r.Price, 'f', 2, 64)
		dst = append(dst, `,"object_id":"b-`...)
		dst = strconv.AppendInt(dst, r.ID, 10)
		dst = append(dst, "\"}\n"...)
	}
	return dst, nil
}

// EncodeCSV is the CSV Encoder (header first).
func EncodeCSV(dst []byte, rows []Row) ([]byte, error) {
	dst = append(dst, "period,product,market,qty,price,object_id\n"...)
	for i := range rows {
		r := &rows[i]
		dst = fmt.Appendf(dst, "%04d-%02d,P%05d,%s,", r.Year, r.Month, r.Product, Markets[r.Market])
		dst = strconv.AppendFloat(dst, r.Qty, 'f', -1, 64)
		dst = append(dst, ',')
		dst = strconv.AppendFloat(dst, r.Price, 'f', 2, 64)
		dst = append(dst, ",b-"...)
		dst = strconv.AppendInt(dst, r.ID, 10)
		dst = append(dst, '\n')
	}
	return dst, nil
}
