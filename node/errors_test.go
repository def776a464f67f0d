package node

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/demandflow/demandflow/cluster"
)

// TestErrorStatusRetryable checks that the errors a client should retry
// map to 503 with "retryable", also when a deadline ended the wait.
func TestErrorStatusRetryable(t *testing.T) {
	for _, tc := range []struct {
		err       error
		status    int
		retryable bool
	}{
		{cluster.ErrReplaying, http.StatusServiceUnavailable, true},
		{fmt.Errorf("%w: %w", cluster.ErrReplaying, context.DeadlineExceeded), http.StatusServiceUnavailable, true},
		{fmt.Errorf("read: %w", cluster.ErrNotLeader), http.StatusServiceUnavailable, true},
		{context.DeadlineExceeded, http.StatusGatewayTimeout, false},
		{fmt.Errorf("%w: %q", cluster.ErrUnknownSeries, "x"), http.StatusNotFound, false},
	} {
		status, body := errorStatus(tc.err)
		detail, _ := body.Detail.(map[string]any)
		retryable, _ := detail["retryable"].(bool)
		if status != tc.status || retryable != tc.retryable || body.Error == "" {
			t.Errorf("errorStatus(%v) = %d %+v, want %d retryable=%v", tc.err, status, body, tc.status, tc.retryable)
		}
	}
}
