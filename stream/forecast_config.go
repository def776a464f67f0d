package stream

import (
	"fmt"
	"time"
)

// Limits and defaults of ForecastConfig.
const (
	// MaxForecastHorizon is the longest forecast horizon a dataset may ask for.
	MaxForecastHorizon = 1000
	// MaxForecastLevels is the largest number of interval levels.
	MaxForecastLevels = 8
	// DefaultForecastModel is the model used when none is configured.
	DefaultForecastModel = "auto"
	// DefaultForecastRefit is the default refit window.
	DefaultForecastRefit = 24 * time.Hour
)

// ForecastConfig is a dataset's forecast configuration ("forecast" in the
// schema JSON). Zero fields mean defaults; see Schema.ForecastSettings.
//
// stream cannot import forecast, so Validate checks everything but the model
// name; node checks the name against forecast.ModelByName before it creates
// the dataset or changes the configuration.
type ForecastConfig struct {
	// Model is a forecast model name ("auto", "ets", "theta", ...); default
	// "auto".
	Model string `json:"model,omitempty"`
	// Horizon is the number of periods forecast, 1..MaxForecastHorizon;
	// default two seasons, at least 6.
	Horizon int `json:"horizon,omitempty"`
	// Levels are the prediction-interval levels in percent, each in
	// (0, 100); default 80 and 95.
	Levels []float64 `json:"levels,omitempty"`
	// Refit is how long a fitted model may be updated cheaply with new points
	// before a full refit, as a Go duration ("24h"); default 24h.
	Refit string `json:"refit,omitempty"`
}

// Validate reports the first invalid field; it wraps ErrInvalidSchema.
func (c *ForecastConfig) Validate() error {
	if c.Horizon < 0 || c.Horizon > MaxForecastHorizon {
		return schemaErr("forecast.horizon %d: want 1..%d", c.Horizon, MaxForecastHorizon)
	}
	if len(c.Levels) > MaxForecastLevels {
		return schemaErr("forecast.levels: %d given, at most %d", len(c.Levels), MaxForecastLevels)
	}
	for _, l := range c.Levels {
		if !(l > 0 && l < 100) {
			return schemaErr("forecast.levels %g: want a percentage in (0, 100)", l)
		}
	}
	if c.Refit != "" {
		d, err := time.ParseDuration(c.Refit)
		if err != nil || d <= 0 {
			return schemaErr("forecast.refit %q: want a positive duration such as 24h", c.Refit)
		}
	}
	if len(c.Model) > 64 {
		return schemaErr("forecast.model: %d bytes, at most 64", len(c.Model))
	}
	return nil
}

// ForecastSettings is a ForecastConfig with every default filled in.
type ForecastSettings struct {
	Model   string
	Horizon int
	Levels  []float64
	Refit   time.Duration
}

// ForecastSettings returns the effective forecast configuration: the
// schema's Forecast with defaults for the zero fields (model "auto", horizon
// two seasons and at least 6, levels 80 and 95, refit 24h). The returned
// Levels slice is fresh.
func (s *Schema) ForecastSettings() ForecastSettings {
	var c ForecastConfig
	if s.Forecast != nil {
		c = *s.Forecast
	}
	out := ForecastSettings{Model: c.Model, Horizon: c.Horizon, Refit: DefaultForecastRefit}
	if out.Model == "" {
		out.Model = DefaultForecastModel
	}
	if out.Horizon == 0 {
		out.Horizon = max(2*s.Frequency.SeasonLength(), 6)
	}
	if len(c.Levels) == 0 {
		out.Levels = []float64{80, 95}
	} else {
		out.Levels = append([]float64(nil), c.Levels...)
	}
	if d, err := time.ParseDuration(c.Refit); err == nil && d > 0 {
		out.Refit = d
	}
	return out
}

// String returns the settings for logs.
func (f ForecastSettings) String() string {
	return fmt.Sprintf("%s h=%d levels=%v refit=%s", f.Model, f.Horizon, f.Levels, f.Refit)
}
