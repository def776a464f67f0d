package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Rule is a per-field validation rule of a Schema.
type Rule struct {
	Required bool     `json:"required,omitempty"`
	Min      *float64 `json:"min,omitempty"`
	Max      *float64 `json:"max,omitempty"`
	Allowed  []string `json:"allowed,omitempty"`
}

// Schema is a dataset schema as the API takes it (DESIGN.md "Dataset
// schema"). Frequency is day, week, month, quarter or year; Duplicates is
// "last" (default) or "sum".
type Schema struct {
	Name         string          `json:"name"`
	Frequency    string          `json:"frequency"`
	Period       string          `json:"period"`
	Dimensions   []string        `json:"dimensions"`
	Measure      string          `json:"measure"`
	Covariates   []string        `json:"covariates,omitempty"`
	ObjectID     string          `json:"object_id,omitempty"`
	Rules        map[string]Rule `json:"rules,omitempty"`
	Duplicates   string          `json:"duplicates,omitempty"`
	Tracking     *bool           `json:"tracking,omitempty"`
	TrackObjects *bool           `json:"track_objects,omitempty"`
}

// Dataset is a dataset's schema and counters as a node reports them.
type Dataset struct {
	Schema
	Created      time.Time `json:"created"`
	Series       int       `json:"series"`
	RowsAccepted int64     `json:"rows_accepted"`
	RowsRejected int64     `json:"rows_rejected"`
	Transactions int64     `json:"transactions"`
}

// CreateDataset creates a dataset. schema is a Schema, a json.RawMessage
// or []byte of JSON, or anything that marshals to the schema JSON. When a
// retried attempt finds the dataset already there (the first attempt
// succeeded but its answer was lost), the existing dataset is returned;
// otherwise an existing dataset is an *APIError with Status 409.
func (c *Client) CreateDataset(ctx context.Context, schema any) (*Dataset, error) {
	var body []byte
	switch s := schema.(type) {
	case []byte:
		body = s
	case json.RawMessage:
		body = s
	default:
		b, err := json.Marshal(schema)
		if err != nil {
			return nil, fmt.Errorf("create dataset: encode schema: %w", err)
		}
		body = b
	}
	var name struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(body, &name)
	req := &request{method: http.MethodPost, path: "/v1/datasets",
		header: http.Header{"Content-Type": {"application/json"}}, body: body}
	resp, err := c.do(ctx, req)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusConflict && req.attempts > 1 && name.Name != "" {
			// Possibly our own lost success; the caller can tell by the
			// schema it gets back.
			if d, derr := c.Dataset(ctx, name.Name); derr == nil {
				return d, nil
			}
		}
		return nil, err
	}
	var out struct {
		Dataset Dataset `json:"dataset"`
	}
	if err := json.Unmarshal(resp.body, &out); err != nil {
		return nil, fmt.Errorf("create dataset: decode response: %w", err)
	}
	return &out.Dataset, nil
}

// Datasets lists every dataset.
func (c *Client) Datasets(ctx context.Context) ([]Dataset, error) {
	var out struct {
		Datasets []Dataset `json:"datasets"`
	}
	if _, err := c.getJSON(ctx, "/v1/datasets", nil, &out); err != nil {
		return nil, err
	}
	return out.Datasets, nil
}

// Dataset returns one dataset; an unknown name is an *APIError with Status
// 404.
func (c *Client) Dataset(ctx context.Context, name string) (*Dataset, error) {
	var out struct {
		Dataset Dataset `json:"dataset"`
	}
	if _, err := c.getJSON(ctx, "/v1/datasets/"+url.PathEscape(name), nil, &out); err != nil {
		return nil, err
	}
	return &out.Dataset, nil
}

// DeleteDataset deletes a dataset and its data. A 404 on a retried attempt
// (the first attempt deleted it) counts as success.
func (c *Client) DeleteDataset(ctx context.Context, name string) error {
	req := &request{method: http.MethodDelete, path: "/v1/datasets/" + url.PathEscape(name)}
	_, err := c.do(ctx, req)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound && req.attempts > 1 {
		return nil
	}
	return err
}
