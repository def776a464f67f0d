package bench

import (
	"fmt"
	"html"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"path/filepath"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// The chart is drawn by hand on a tiny canvas abstraction with an SVG and a
// PNG back end: two panels sharing the time axis, throughput (rows/s) on
// top and ack latency (p50, p99, max; ms) below.

const (
	plotW, plotH      = 900, 560
	marginL, marginR  = 80, 150
	marginT, panelGap = 36, 56
	panelH            = 200
)

type canvas interface {
	line(x1, y1, x2, y2 float64, c color.RGBA, width float64)
	polyline(pts [][2]float64, c color.RGBA, width float64)
	text(x, y float64, s string, anchor string, c color.RGBA) // anchor: start, middle, end
}

var (
	colAxis = color.RGBA{0x44, 0x44, 0x44, 0xff}
	colGrid = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	colRows = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	colP50  = color.RGBA{0x2c, 0xa0, 0x2c, 0xff}
	colP99  = color.RGBA{0xd6, 0x27, 0x28, 0xff}
	colMax  = color.RGBA{0x99, 0x99, 0x99, 0xff}
)

// niceMax rounds v up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", math.Round(v/1e5)/10)
	case v >= 1e3:
		return fmt.Sprintf("%gk", math.Round(v/1e2)/10)
	}
	return fmt.Sprintf("%g", math.Round(v*100)/100)
}

type series struct {
	name string
	col  color.RGBA
	y    func(Point) float64
}

func drawPanel(cv canvas, top float64, title string, tl []Point, tmax float64, ss []series) {
	x0, x1 := float64(marginL), float64(plotW-marginR)
	y0, y1 := top+panelH, top
	ymax := 0.0
	for _, p := range tl {
		for _, s := range ss {
			ymax = max(ymax, s.y(p))
		}
	}
	ymax = niceMax(ymax)
	for i := 0; i <= 4; i++ {
		y := y0 - float64(i)/4*(y0-y1)
		cv.line(x0, y, x1, y, colGrid, 1)
		cv.text(x0-6, y+4, human(ymax*float64(i)/4), "end", colAxis)
	}
	for i := 0; i <= 5; i++ {
		x := x0 + float64(i)/5*(x1-x0)
		cv.line(x, y0, x, y0+4, colAxis, 1)
		cv.text(x, y0+18, human(tmax*float64(i)/5)+"s", "middle", colAxis)
	}
	cv.line(x0, y0, x1, y0, colAxis, 1)
	cv.line(x0, y0, x0, y1, colAxis, 1)
	cv.text(x0, y1-8, title, "start", colAxis)
	for k, s := range ss {
		pts := make([][2]float64, 0, len(tl))
		for _, p := range tl {
			pts = append(pts, [2]float64{x0 + p.T/tmax*(x1-x0), y0 - s.y(p)/ymax*(y0-y1)})
		}
		cv.polyline(pts, s.col, 2)
		ly := y1 + 14 + float64(k)*18
		cv.line(x1+12, ly-4, x1+32, ly-4, s.col, 2)
		cv.text(x1+38, ly, s.name, "start", colAxis)
	}
}

func drawChart(cv canvas, r *Report) {
	tl := r.Timeline
	tmax := 1.0
	for _, p := range tl {
		tmax = max(tmax, p.T)
	}
	lbl := []string{r.Config.Format}
	for _, k := range []string{"proto", "targets"} {
		if v := r.Config.Labels[k]; v != "" {
			lbl = append(lbl, v)
		}
	}
	cv.text(plotW/2, 20, fmt.Sprintf("demandflow bench ingest: %s, batch %d, concurrency %d, %s rows/s, p99 %.1f ms",
		strings.Join(lbl, " "), r.Config.Batch, r.Config.Concurrency, human(r.RowsPerS), r.LatencyMs.P99), "middle", colAxis)
	drawPanel(cv, marginT+20, "throughput (rows/s acked)", tl, tmax, []series{{"rows/s", colRows, func(p Point) float64 { return p.RowsPerS }}})
	drawPanel(cv, marginT+20+panelH+panelGap, "ack latency (ms)", tl, tmax, []series{
		{"p50", colP50, func(p Point) float64 { return p.P50Ms }},
		{"p99", colP99, func(p Point) float64 { return p.P99Ms }},
		{"max", colMax, func(p Point) float64 { return p.MaxMs }},
	})
}

// WritePlot draws r's timeline as SVG or PNG, chosen by name's extension
// (".svg" or ".png").
func (r *Report) WritePlot(w io.Writer, name string) error {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".svg":
		return r.WriteSVG(w)
	case ".png":
		return r.WritePNG(w)
	}
	return fmt.Errorf("bench: plot %s: want a .svg or .png file name", name)
}

// WriteSVG draws r's timeline as an SVG image.
func (r *Report) WriteSVG(w io.Writer) error {
	cv := &svgCanvas{}
	fmt.Fprintf(&cv.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(&cv.b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	drawChart(cv, r)
	cv.b.WriteString("</svg>\n")
	_, err := io.WriteString(w, cv.b.String())
	return err
}

type svgCanvas struct{ b strings.Builder }

func hexColor(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

func (s *svgCanvas) line(x1, y1, x2, y2 float64, c color.RGBA, width float64) {
	fmt.Fprintf(&s.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%g"/>`+"\n", x1, y1, x2, y2, hexColor(c), width)
}

func (s *svgCanvas) polyline(pts [][2]float64, c color.RGBA, width float64) {
	if len(pts) == 0 {
		return
	}
	s.b.WriteString(`<polyline fill="none" stroke="` + hexColor(c) + fmt.Sprintf(`" stroke-width="%g" points="`, width))
	for _, p := range pts {
		fmt.Fprintf(&s.b, "%.1f,%.1f ", p[0], p[1])
	}
	s.b.WriteString("\"/>\n")
}

func (s *svgCanvas) text(x, y float64, str, anchor string, c color.RGBA) {
	fmt.Fprintf(&s.b, `<text x="%.1f" y="%.1f" text-anchor="%s" fill="%s">%s</text>`+"\n", x, y, anchor, hexColor(c), html.EscapeString(str))
}

// WritePNG draws r's timeline as a PNG image.
func (r *Report) WritePNG(w io.Writer) error {
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	drawChart(&pngCanvas{img: img}, r)
	return png.Encode(w, img)
}

type pngCanvas struct{ img *image.RGBA }

func (p *pngCanvas) line(x1, y1, x2, y2 float64, c color.RGBA, width float64) {
	n := int(math.Max(math.Abs(x2-x1), math.Abs(y2-y1))) + 1
	half := int(width / 2)
	for i := 0; i <= n; i++ {
		t := float64(i) / float64(n)
		x, y := int(math.Round(x1+t*(x2-x1))), int(math.Round(y1+t*(y2-y1)))
		for dx := -half; dx <= half; dx++ {
			for dy := -half; dy <= half; dy++ {
				if image.Pt(x+dx, y+dy).In(p.img.Rect) {
					p.img.SetRGBA(x+dx, y+dy, c)
				}
			}
		}
	}
}

func (p *pngCanvas) polyline(pts [][2]float64, c color.RGBA, width float64) {
	for i := 1; i < len(pts); i++ {
		p.line(pts[i-1][0], pts[i-1][1], pts[i][0], pts[i][1], c, width)
	}
}

func (p *pngCanvas) text(x, y float64, s, anchor string, c color.RGBA) {
	d := &font.Drawer{Dst: p.img, Src: image.NewUniform(c), Face: basicfont.Face7x13}
	wid := d.MeasureString(s).Round()
	switch anchor {
	case "middle":
		x -= float64(wid) / 2
	case "end":
		x -= float64(wid)
	}
	d.Dot = fixed.P(int(x), int(y))
	d.DrawString(s)
}
