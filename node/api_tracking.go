package node

// Tracking queries (DESIGN.md "Tracking"). Every node answers from its own
// FSM state, which holds the same tracking records on every node that
// applied the same index; ?consistent=true reads through the leader first.
// Each response names the answering node and the applied index it
// reflects at least (read before a Pebble snapshot that all the response's
// queries share).
//
//	GET /v1/tracking/transactions/{tx_id}?cursor=&limit=     transaction, blocks, progress, rejected rows (paged)
//	GET /v1/tracking/transactions?dataset=&source=&status=&from=&to=&limit=&cursor=   newest first
//	GET /v1/tracking/objects/{object_id}?cursor=&limit=      the object's journey, in time order (paged)
//	GET /v1/tracking/stats?from=&to=&bucket=1m|1h|1d&by=stage|dataset|source|node
//
// Times are RFC 3339 or relative to now ("-1h", "-30m", "-7d", "now").
// A bad parameter is a 400 naming it; an unknown transaction or object is
// a 404.
//
// Egress: reads (REST GETs of observations and forecasts) are not tracked:
// recording them would cost a Raft write per GET. Egress blocks are for
// deliveries that move a transaction's data out of the cluster (export
// jobs, webhook subscriptions), which call cluster.RecordBlocks like the
// forecasting stage; see tracking/doc.go "Stages after apply".

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/demandflow/demandflow/cluster"
	"github.com/demandflow/demandflow/tracking"
)

// TxTrackingResponse is the body of GET /v1/tracking/transactions/{tx_id}.
type TxTrackingResponse struct {
	tracking.TxView
	// Rejections is one page of the rejected rows, in row order;
	// NextCursor fetches the next page ("" on the last).
	Rejections []tracking.Rejection `json:"rejections"`
	NextCursor string               `json:"next_cursor"`
	Node       string               `json:"node"`
	Index      uint64               `json:"index"`
}

// TxListResponse is the body of GET /v1/tracking/transactions.
type TxListResponse struct {
	Transactions []tracking.Transaction `json:"transactions"`
	NextCursor   string                 `json:"next_cursor"`
	Node         string                 `json:"node"`
	Index        uint64                 `json:"index"`
}

// ObjectTrackingResponse is the body of GET /v1/tracking/objects/{object_id}.
type ObjectTrackingResponse struct {
	ObjectID   string                 `json:"object_id"`
	Events     []tracking.ObjectEvent `json:"events"`
	NextCursor string                 `json:"next_cursor"`
	Node       string                 `json:"node"`
	Index      uint64                 `json:"index"`
}

// StatsResponse is the body of GET /v1/tracking/stats.
type StatsResponse struct {
	*tracking.StatsResult
	Node  string `json:"node"`
	Index uint64 `json:"index"`
}

// trackingInvalid turns a tracking.ErrInvalid into a 400 naming param.
func trackingInvalid(param string, err error) error {
	if errors.Is(err, tracking.ErrInvalid) {
		msg := strings.TrimPrefix(err.Error(), tracking.ErrInvalid.Error()+": ")
		return badRequest(param+": "+msg, map[string]any{"param": param})
	}
	return err
}

func paramError(param, format string, args ...any) error {
	return badRequest(param+": "+fmt.Sprintf(format, args...), map[string]any{"param": param})
}

// pageParams reads ?limit (0..tracking.MaxLimit; 0 = default) and ?cursor.
func pageParams(q url.Values) (limit int, cursor string, err error) {
	if v := q.Get("limit"); v != "" {
		limit, err = strconv.Atoi(v)
		if err != nil || limit < 0 || limit > tracking.MaxLimit {
			return 0, "", paramError("limit", "%q is not an integer in 0..%d", v, tracking.MaxLimit)
		}
	}
	return limit, q.Get("cursor"), nil
}

// parseTimeParam parses RFC 3339 or a time relative to now ("-1h", "-90m",
// "-7d", "now"); "" gives def.
func parseTimeParam(q url.Values, name string, now, def time.Time) (time.Time, error) {
	v := strings.TrimSpace(q.Get(name))
	switch {
	case v == "":
		return def, nil
	case v == "now":
		return now, nil
	case strings.HasPrefix(v, "-") || strings.HasPrefix(v, "+"):
		d, err := parseDurationDays(v)
		if err != nil {
			return time.Time{}, paramError(name, "%q is neither RFC 3339 nor a relative time like -1h or -7d", v)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, paramError(name, "%q is neither RFC 3339 nor a relative time like -1h or -7d", v)
	}
	return t, nil
}

// parseDurationDays is time.ParseDuration plus a whole-day suffix "d".
func parseDurationDays(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, err
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

// trackingView opens a consistent view for one response.
func (n *Node) trackingView() (*tracking.Store, tracking.Reader, uint64, func()) {
	st := n.cl.Store()
	r, index, release := st.TrackingReader()
	return st.Tracking(), r, index, release
}

// trackingTransaction answers GET /v1/tracking/transactions/{tx_id}.
func (n *Node) trackingTransaction(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := r.PathValue("tx_id")
	limit, cursor, err := pageParams(r.URL.Query())
	if err != nil {
		return err
	}
	ts, rd, index, release := n.trackingView()
	defer release()
	v, err := ts.Transaction(ctx, rd, id)
	if err != nil {
		if errors.Is(err, tracking.ErrNotFound) {
			return &apiError{status: http.StatusNotFound, msg: fmt.Sprintf("transaction %q is not tracked (unknown, not committed, or expired)", id)}
		}
		return trackingInvalid("tx_id", err)
	}
	rej, next, err := ts.Rejections(ctx, rd, id, cursor, limit)
	if err != nil {
		return trackingInvalid("cursor", err)
	}
	writeJSON(w, http.StatusOK, TxTrackingResponse{TxView: *v, Rejections: rej, NextCursor: next, Node: n.cfg.NodeName, Index: index})
	return nil
}

// trackingTransactions answers GET /v1/tracking/transactions.
func (n *Node) trackingTransactions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, cursor, err := pageParams(q)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	f := tracking.Filter{Dataset: q.Get("dataset"), Source: tracking.Source(q.Get("source")),
		Status: tracking.Status(q.Get("status")), Limit: limit, Cursor: cursor}
	switch f.Status {
	case "", tracking.StatusInProgress, tracking.StatusSucceeded, tracking.StatusPartiallyFailed, tracking.StatusFailed:
	default:
		return paramError("status", "%q is not in_progress, succeeded, partially_failed or failed", f.Status)
	}
	if f.From, err = parseTimeParam(q, "from", now, time.Time{}); err != nil {
		return err
	}
	if f.To, err = parseTimeParam(q, "to", now, time.Time{}); err != nil {
		return err
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return paramError("to", "must be after from")
	}
	ts, rd, index, release := n.trackingView()
	defer release()
	txs, next, err := ts.Transactions(r.Context(), rd, f)
	if err != nil {
		return trackingInvalid("cursor", err)
	}
	writeJSON(w, http.StatusOK, TxListResponse{Transactions: txs, NextCursor: next, Node: n.cfg.NodeName, Index: index})
	return nil
}

// trackingObject answers GET /v1/tracking/objects/{object_id}.
func (n *Node) trackingObject(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("object_id")
	limit, cursor, err := pageParams(r.URL.Query())
	if err != nil {
		return err
	}
	ts, rd, index, release := n.trackingView()
	defer release()
	evs, next, err := ts.Object(r.Context(), rd, id, limit, cursor)
	if err != nil {
		if cursor != "" {
			return trackingInvalid("cursor", err)
		}
		return trackingInvalid("object_id", err)
	}
	if len(evs) == 0 && cursor == "" {
		return &apiError{status: http.StatusNotFound,
			msg: fmt.Sprintf("object %q is not tracked (unknown, expired, or its dataset has no object id or track_objects: false)", id)}
	}
	writeJSON(w, http.StatusOK, ObjectTrackingResponse{ObjectID: id, Events: evs, NextCursor: next, Node: n.cfg.NodeName, Index: index})
	return nil
}

// trackingStats answers GET /v1/tracking/stats; from defaults to -1h, to
// to now, bucket to 1m and by to stage.
func (n *Node) trackingStats(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	now := time.Now().UTC()
	var sq tracking.StatsQuery
	var err error
	if sq.From, err = parseTimeParam(q, "from", now, now.Add(-time.Hour)); err != nil {
		return err
	}
	if sq.To, err = parseTimeParam(q, "to", now, now); err != nil {
		return err
	}
	if !sq.To.After(sq.From) {
		return paramError("to", "must be after from")
	}
	switch b := q.Get("bucket"); b {
	case "", "1m":
		sq.Bucket = time.Minute
	default:
		d, err := parseDurationDays(b)
		if err != nil || d <= 0 || d%time.Minute != 0 {
			return paramError("bucket", "%q is not a positive whole number of minutes (1m, 1h, 1d)", b)
		}
		sq.Bucket = d
	}
	switch sq.By = q.Get("by"); sq.By {
	case "", "stage", "dataset", "source", "node":
	default:
		return paramError("by", "%q is not stage, dataset, source or node", sq.By)
	}
	ts, rd, index, release := n.trackingView()
	defer release()
	res, err := ts.Stats(r.Context(), rd, sq)
	if err != nil {
		return trackingInvalid("from", err)
	}
	writeJSON(w, http.StatusOK, StatsResponse{StatsResult: res, Node: n.cfg.NodeName, Index: index})
	return nil
}

// registerTrackingMetrics exports the tracking counters of cl.
func registerTrackingMetrics(reg prometheus.Registerer, cl *cluster.Cluster) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "demandflow_tracking_write_errors_total",
			Help: "Tracking writes that failed during apply on this node (ingests are unaffected).",
		}, func() float64 { return float64(cl.TrackingStats().WriteErrors) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "demandflow_tracking_run_ingest_fallbacks_total",
			Help: "Object index folds whose runs could not be ingested as an sstable and were written through the apply batch (nothing is lost; see the node log).",
		}, func() float64 { return float64(cl.TrackingStats().RunIngestFallbacks) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "demandflow_tracking_blocks_dropped_total",
			Help: "Tracking blocks of stages after apply that were dropped (queue full or proposal failed).",
		}, func() float64 { return float64(cl.TrackingStats().BlocksDropped) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "demandflow_tracking_blocks_proposed_total",
			Help: "Tracking blocks of stages after apply committed through Raft.",
		}, func() float64 { return float64(cl.TrackingStats().BlocksProposed) }),
	)
}
