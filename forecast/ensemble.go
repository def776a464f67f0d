package forecast

import (
	"fmt"
	"strings"
)

// Ensemble is the default "auto" model: the mean of automatic ETS, Theta
// and damped trend (ETS(A,Ad,N)) forecasts, with interval bounds averaged
// likewise. Series with many zeros (see isIntermittent) use Intermittent
// instead. The damped fit is the one already estimated during the ETS model
// search, so the ensemble costs little more than ETS alone.
type Ensemble struct{}

// Name implements Model.
func (Ensemble) Name() string { return "auto" }

// Fit implements Model.
func (Ensemble) Fit(y []float64, m int) (Fitted, error) {
	if len(y) == 0 {
		return nil, ErrTooShort
	}
	if isIntermittent(y) {
		return Intermittent{}.Fit(y, m)
	}
	var members []Fitted
	r, err := autoETSSearch(y, m)
	if err == nil {
		members = append(members, &etsFitted{r.best})
		if r.damped != nil {
			members = append(members, &etsFitted{r.damped})
		}
	}
	if th, err := (Theta{}).Fit(y, m); err == nil {
		members = append(members, th)
	}
	if len(members) == 0 {
		return Naive{}.Fit(y, m)
	}
	return &ensembleFitted{members: members}, nil
}

type ensembleFitted struct{ members []Fitted }

func (e *ensembleFitted) Method() string {
	names := make([]string, len(e.members))
	for i, m := range e.members {
		names[i] = m.Method()
	}
	return "auto(" + strings.Join(names, "+") + ")"
}

func (e *ensembleFitted) Forecast(h int, levels []float64) Forecast {
	h = validHorizon(h)
	out := Forecast{Mean: make([]float64, h), Levels: levels, Model: e.Method()}
	out.Lower = make([][]float64, len(levels))
	out.Upper = make([][]float64, len(levels))
	for i := range levels {
		out.Lower[i] = make([]float64, h)
		out.Upper[i] = make([]float64, h)
	}
	w := 1 / float64(len(e.members))
	for _, m := range e.members {
		f := m.Forecast(h, levels)
		for t := range h {
			out.Mean[t] += w * f.Mean[t]
			for i := range levels {
				out.Lower[i][t] += w * f.Lower[i][t]
				out.Upper[i][t] += w * f.Upper[i][t]
			}
		}
	}
	if len(levels) == 0 {
		out.Lower, out.Upper = nil, nil
	}
	return out
}

// Refresh absorbs the last added observations of y (the whole series,
// ending with them) into f without re-estimating parameters, where f
// supports that: an ETS fit advances its state (Update); the auto ensemble
// advances its ETS members and refits its Theta member on y (Theta costs
// about 0.1 ms). m is the season length f was fitted with. Other models
// return ErrNoUpdate; so does an ensemble whose members cannot all be
// advanced. f is not modified.
func Refresh(f Fitted, y []float64, added, m int) (Fitted, error) {
	if added <= 0 || added > len(y) {
		return nil, fmt.Errorf("forecast: refresh with %d new of %d observations", added, len(y))
	}
	tail := y[len(y)-added:]
	if u, ok := f.(Updater); ok {
		return u.Update(tail)
	}
	e, ok := f.(*ensembleFitted)
	if !ok {
		return nil, ErrNoUpdate
	}
	members := make([]Fitted, len(e.members))
	for i, mb := range e.members {
		switch v := mb.(type) {
		case Updater:
			nf, err := v.Update(tail)
			if err != nil {
				return nil, err
			}
			members[i] = nf
		case *thetaFitted:
			th, err := Theta{}.Fit(y, m)
			if err != nil {
				return nil, err
			}
			members[i] = th
		default:
			return nil, ErrNoUpdate
		}
	}
	return &ensembleFitted{members: members}, nil
}
