package forecast

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// ErrTooShort is returned by Fit when a series is too short for the model.
var ErrTooShort = errors.New("forecast: series too short")

// ErrUnknownModel is returned by ModelByName for a name it does not know.
var ErrUnknownModel = errors.New("forecast: unknown model")

// Model is a forecasting method. Implementations are stateless values, safe
// for concurrent use; Fit never retains or modifies y.
type Model interface {
	// Name is the name ModelByName accepts for this model.
	Name() string
	// Fit estimates the model on y with season length m (1 = none).
	Fit(y []float64, m int) (Fitted, error)
}

// Fitted is a model estimated on one series. It is immutable and safe for
// concurrent use.
type Fitted interface {
	// Forecast returns h point forecasts and, for each level in levels
	// (percent, 0 < level < 100), a lower and an upper prediction bound.
	Forecast(h int, levels []float64) Forecast
	// Method describes the fitted model, as "ETS(M,Ad,N)" or "Theta".
	Method() string
}

// Updater is implemented by fitted models whose state can be advanced over
// new observations without re-estimating parameters.
type Updater interface {
	// Update returns a new Fitted whose state has absorbed y, which follows
	// the data the model was fitted on. The receiver is not modified.
	Update(y []float64) (Fitted, error)
}

// Forecast holds the forecasts of one series. Lower[i] and Upper[i] are the
// bounds at Levels[i]; each inner slice has len(Mean) elements.
type Forecast struct {
	Mean   []float64
	Lower  [][]float64
	Upper  [][]float64
	Levels []float64
	// Model is the fitted model's description, as Fitted.Method.
	Model string
}

// Update advances a fitted model over new observations without refitting
// when the model supports it (see Updater); otherwise it returns
// ErrNoUpdate.
func Update(f Fitted, y []float64) (Fitted, error) {
	u, ok := f.(Updater)
	if !ok {
		return nil, ErrNoUpdate
	}
	return u.Update(y)
}

// ErrNoUpdate is returned by Update for models without a state update.
var ErrNoUpdate = errors.New("forecast: model has no incremental update")

// ModelNames lists the names ModelByName accepts (besides "ets:XYZ").
var ModelNames = []string{
	"auto", "naive", "snaive", "drift", "mean", "ses", "holt", "damped",
	"hw_add", "hw_mul", "ets", "theta", "otm", "croston", "sba", "tsb",
	"intermittent",
}

// ModelByName returns the model with the given name: one of ModelNames, or
// "ets:" followed by a fixed ETS specification such as "MAN", "AAdA" or
// "MNM" (error, trend with optional d, season).
func ModelByName(name string) (Model, error) {
	switch name {
	case "auto", "":
		return Ensemble{}, nil
	case "naive":
		return Naive{}, nil
	case "snaive":
		return SeasonalNaive{}, nil
	case "drift":
		return Drift{}, nil
	case "mean":
		return Mean{}, nil
	case "ses":
		return ETS{Spec: "ANN", name: "ses"}, nil
	case "holt":
		return ETS{Spec: "AAN", name: "holt"}, nil
	case "damped":
		return ETS{Spec: "AAdN", name: "damped"}, nil
	case "hw_add":
		return ETS{Spec: "AAA", name: "hw_add"}, nil
	case "hw_mul":
		return ETS{Spec: "MAM", name: "hw_mul"}, nil
	case "ets":
		return ETS{}, nil
	case "theta":
		return Theta{}, nil
	case "otm":
		return OptimizedTheta{}, nil
	case "croston":
		return Croston{Variant: CrostonClassic}, nil
	case "sba":
		return Croston{Variant: CrostonSBA}, nil
	case "tsb":
		return Croston{Variant: CrostonTSB}, nil
	case "intermittent":
		return Intermittent{}, nil
	}
	if spec, ok := strings.CutPrefix(name, "ets:"); ok {
		if _, err := parseETSSpec(spec); err != nil {
			return nil, err
		}
		return ETS{Spec: spec}, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownModel, name)
}

// normalBounds fills symmetric normal intervals mean +- z*sqrt(v).
func normalBounds(mean, variance, levels []float64) (lo, hi [][]float64) {
	lo = make([][]float64, len(levels))
	hi = make([][]float64, len(levels))
	for i, lv := range levels {
		z := levelZ(lv)
		lo[i] = make([]float64, len(mean))
		hi[i] = make([]float64, len(mean))
		for t, mu := range mean {
			d := z * math.Sqrt(math.Max(variance[t], 0))
			lo[i][t] = mu - d
			hi[i][t] = mu + d
		}
	}
	return lo, hi
}

func validHorizon(h int) int {
	if h < 0 {
		return 0
	}
	return h
}

var errNonPositive = errors.New("forecast: multiplicative model needs positive data")
