package client

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
)

// SeriesQuery selects series of a dataset.
type SeriesQuery struct {
	// Filter keeps series whose dimension equals the value.
	Filter map[string]string
	// Limit is the page size; 0 means the server default (100).
	Limit int
	// Cursor is the NextCursor of the previous page; "" for the first.
	Cursor string
}

// Series is one series of a dataset.
type Series struct {
	ID         string            `json:"series_id"`
	Dimensions map[string]string `json:"dimensions"`
}

// SeriesPage is one page of series.
type SeriesPage struct {
	Series []Series `json:"series"`
	// NextCursor is "" on the last page.
	NextCursor string `json:"next_cursor"`
	Node       string `json:"node"`
	Index      uint64 `json:"index"`
}

// Series lists one page of a dataset's series.
func (c *Client) Series(ctx context.Context, dataset string, q SeriesQuery) (*SeriesPage, error) {
	v := url.Values{}
	for k, x := range q.Filter {
		v.Set(k, x)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var out SeriesPage
	if _, err := c.getJSON(ctx, "/v1/datasets/"+url.PathEscape(dataset)+"/series", v, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ObservationsQuery bounds an observations read; periods are in any form
// the API accepts ("2024-03", "2024-W11"); "" means unbounded.
type ObservationsQuery struct {
	From, To string
	// Consistent asks the node to confirm leadership first
	// (?consistent=true).
	Consistent bool
}

// Observation is one stored observation.
type Observation struct {
	Period     string              `json:"period"`
	Value      float64             `json:"value"`
	Covariates map[string]*float64 `json:"covariates,omitempty"`
	ObjectID   string              `json:"object_id,omitempty"`
}

// Observations is a series' observations in period order.
type Observations struct {
	Dataset      string        `json:"dataset"`
	SeriesID     string        `json:"series_id"`
	Frequency    string        `json:"frequency"`
	Observations []Observation `json:"observations"`
	Node         string        `json:"node"`
	Index        uint64        `json:"index"`
}

// Observations reads a series' observations as JSON.
func (c *Client) Observations(ctx context.Context, dataset, seriesID string, q ObservationsQuery) (*Observations, error) {
	v := url.Values{}
	if q.From != "" {
		v.Set("from", q.From)
	}
	if q.To != "" {
		v.Set("to", q.To)
	}
	if q.Consistent {
		v.Set("consistent", "true")
	}
	var out Observations
	path := "/v1/datasets/" + url.PathEscape(dataset) + "/series/" + url.PathEscape(seriesID) + "/observations"
	if _, err := c.getJSON(ctx, path, v, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Status returns GET /v1/status of the current node, raw.
func (c *Client) Status(ctx context.Context) (json.RawMessage, error) {
	return c.Get(ctx, "/v1/status", nil)
}

// Transaction returns a tracking transaction by id, raw JSON
// (GET /v1/tracking/transactions/{id}). The tracking API is not final:
// this is a thin wrapper that will get a typed result when it is.
func (c *Client) Transaction(ctx context.Context, txID string) (json.RawMessage, error) {
	return c.Get(ctx, "/v1/tracking/transactions/"+url.PathEscape(txID), nil)
}

// Tracking GETs /v1/tracking/<path> with query q (for example
// "objects/o-1" or "stats"), raw JSON. Thin wrapper, like Transaction.
func (c *Client) Tracking(ctx context.Context, path string, q url.Values) (json.RawMessage, error) {
	return c.Get(ctx, "/v1/tracking/"+path, q)
}

// Forecasts GETs /v1/datasets/{dataset}/forecasts with query q (series
// filter, horizon, levels), raw JSON. Thin wrapper until the forecast API
// is final.
func (c *Client) Forecasts(ctx context.Context, dataset string, q url.Values) (json.RawMessage, error) {
	return c.Get(ctx, "/v1/datasets/"+url.PathEscape(dataset)+"/forecasts", q)
}
