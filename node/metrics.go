package node

import "github.com/prometheus/client_golang/prometheus"

// metrics are the node's own Prometheus collectors. Labels come only from
// bounded sets (format, outcome, code class), never ids.
type metrics struct {
	ingestRequests *prometheus.CounterVec   // format, code
	ingestRows     *prometheus.CounterVec   // outcome: accepted|rejected
	ingestBytes    prometheus.Counter       // body bytes after decompression
	ingestSeconds  *prometheus.HistogramVec // stage: validate|commit|total
	httpRequests   *prometheus.CounterVec   // route, code
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		ingestRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "demandflow_ingest_requests_total", Help: "Ingest requests by body format and HTTP status.",
		}, []string{"format", "code"}),
		ingestRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "demandflow_ingest_rows_total", Help: "Ingested rows by outcome (accepted, rejected).",
		}, []string{"outcome"}),
		ingestBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "demandflow_ingest_body_bytes_total", Help: "Ingest body bytes read, after decompression.",
		}),
		ingestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "demandflow_ingest_stage_seconds", Help: "Time spent per ingest stage.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"stage"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "demandflow_http_requests_total", Help: "API requests by route and HTTP status.",
		}, []string{"route", "code"}),
	}
	reg.MustRegister(m.ingestRequests, m.ingestRows, m.ingestBytes, m.ingestSeconds, m.httpRequests)
	return m
}
