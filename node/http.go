package node

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/pprof"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// handlerFunc is an API handler that returns an error instead of writing
// one; the wrapper maps it through errorStatus.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// statusRecorder remembers the status a handler wrote, for metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (n *Node) handle(mux *http.ServeMux, pattern, route string, h handlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), n.cfg.RequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		rec := &statusRecorder{ResponseWriter: w}
		if r.Method == http.MethodGet && r.URL.Query().Get("consistent") == "true" {
			if _, err := n.cl.ConsistentRead(ctx); err != nil {
				n.writeError(rec, r, err)
				n.metrics.httpRequests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
				return
			}
		}
		w.Header().Set("X-Demandflow-Node", n.cfg.NodeName)
		if n.altSvc != "" && r.ProtoMajor < 3 {
			w.Header().Set("Alt-Svc", n.altSvc)
		}
		if err := h(rec, r); err != nil {
			n.writeError(rec, r, err)
		}
		n.metrics.httpRequests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
	})
}

func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	n.handle(mux, "POST /v1/datasets", "create_dataset", n.createDataset)
	n.handle(mux, "GET /v1/datasets", "list_datasets", n.listDatasets)
	n.handle(mux, "GET /v1/datasets/{name}", "get_dataset", n.getDataset)
	n.handle(mux, "DELETE /v1/datasets/{name}", "delete_dataset", n.deleteDataset)
	n.handle(mux, "POST /v1/datasets/{name}/records", "ingest", n.ingest)
	n.handle(mux, "GET /v1/datasets/{name}/series", "list_series", n.listSeries)
	n.handle(mux, "GET /v1/datasets/{name}/series/{id}/observations", "observations", n.observations)
	n.forecastRoutes(mux)
	n.handle(mux, "GET /v1/status", "status", n.status)
	n.handle(mux, "GET /v1/alarms", "alarms", n.alarms)
	n.handle(mux, "GET /v1/tracking/transactions", "tracking_transactions", n.trackingTransactions)
	n.handle(mux, "GET /v1/tracking/transactions/{tx_id}", "tracking_transaction", n.trackingTransaction)
	n.handle(mux, "GET /v1/tracking/objects/{object_id}", "tracking_object", n.trackingObject)
	n.handle(mux, "GET /v1/tracking/stats", "tracking_stats", n.trackingStats)
	n.handle(mux, "GET /v1/cluster/members", "members", n.clusterMembers)
	n.handle(mux, "GET /v1/cluster/raft", "raft", n.clusterRaft)
	n.handle(mux, "POST /v1/cluster/leader/transfer", "leader_transfer", n.leaderTransfer)
	n.handle(mux, "GET /v1/cluster/snapshot", "snapshot_save", n.snapshotSave)
	n.handle(mux, "POST /v1/cluster/snapshot", "snapshot_restore", n.snapshotRestore)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "node": n.cfg.NodeName})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ok, why := n.cl.Ready()
		if !ok {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "reason": why, "node": n.cfg.NodeName, "index": n.cl.Store().AppliedIndex()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "node": n.cfg.NodeName, "index": n.cl.Store().AppliedIndex()})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{Registry: n.reg}))
	if n.cfg.EnableDebug {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("GET /debug/pebble", n.debugPebble)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorResponse{Error: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	return mux
}

// debugPebble writes the Pebble metrics of the node's stores as text: per
// store, its levels, flushes, compactions and caches since the node
// started. Diagnostics only (--enable-debug).
func (n *Node) debugPebble(w http.ResponseWriter, r *http.Request) {
	m := n.cl.PebbleMetrics()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, name := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(w, "== %s store ==\n%s\n", name, m[name])
	}
}

// status reports the node's identity and state.
func (n *Node) status(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{
		"node":     n.cfg.NodeName,
		"index":    n.cl.Store().AppliedIndex(),
		"addrs":    n.Addrs(),
		"datasets": len(n.cl.Store().Datasets()),
		"time":     time.Now().UTC().Format(time.RFC3339),
	})
	return nil
}
