package node

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/demandflow/demandflow/cluster"
	"github.com/demandflow/demandflow/stream"
)

// apiError is an error with a chosen HTTP status, for problems found in the
// handlers themselves (bad query parameter, unknown encoding).
type apiError struct {
	status int
	msg    string
	detail any
}

func (e *apiError) Error() string { return e.msg }

func badRequest(msg string, detail any) error {
	return &apiError{status: http.StatusBadRequest, msg: msg, detail: detail}
}

// errBodyTooLarge is returned when a body exceeds MaxBodyBytes, before or
// after decompression.
var errBodyTooLarge = errors.New("request body too large")

// errorResponse is the JSON body of every error response.
type errorResponse struct {
	Error  string `json:"error"`
	Detail any    `json:"detail,omitempty"`
}

// errorStatus is the one place that maps errors to HTTP statuses.
func errorStatus(err error) (int, errorResponse) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, errorResponse{Error: ae.msg, Detail: ae.detail}
	}
	var se *stream.SyntaxError
	if errors.As(err, &se) {
		return http.StatusBadRequest, errorResponse{Error: se.Error(), Detail: map[string]any{
			"format": se.Format, "line": se.Line, "column": se.Column, "row": se.Row, "field": se.Field,
		}}
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), errors.Is(err, errBodyTooLarge), errors.Is(err, stream.ErrBodyTooLarge):
		return http.StatusRequestEntityTooLarge, errorResponse{Error: err.Error()}
	case errors.Is(err, stream.ErrInvalidSchema):
		return http.StatusBadRequest, errorResponse{Error: err.Error()}
	case errors.Is(err, stream.ErrUnsupportedFormat):
		return http.StatusUnsupportedMediaType, errorResponse{Error: err.Error()}
	case errors.Is(err, cluster.ErrUnknownDataset), errors.Is(err, cluster.ErrUnknownSeries):
		return http.StatusNotFound, errorResponse{Error: err.Error()}
	case errors.Is(err, cluster.ErrDatasetExists):
		return http.StatusConflict, errorResponse{Error: err.Error()}
	case errors.Is(err, cluster.ErrNotLeader), errors.Is(err, cluster.ErrRetryable), errors.Is(err, cluster.ErrShutdown),
		errors.Is(err, cluster.ErrReplaying):
		return http.StatusServiceUnavailable, errorResponse{Error: err.Error(), Detail: map[string]any{"retryable": true}}
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, errorResponse{Error: "request timed out; retry with the same Idempotency-Key"}
	case errors.Is(err, context.Canceled):
		return 499, errorResponse{Error: "request canceled"}
	}
	return http.StatusInternalServerError, errorResponse{Error: err.Error()}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// writeError writes err as a JSON error response and returns the status.
func (n *Node) writeError(w http.ResponseWriter, r *http.Request, err error) int {
	status, body := errorStatus(err)
	if status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout {
		w.Header().Set("Retry-After", "1")
	}
	if status >= 500 && status != http.StatusGatewayTimeout {
		n.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	writeJSON(w, status, body)
	return status
}
