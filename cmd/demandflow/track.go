package main

// Tracking commands: track tx, track object, track list and track stats
// print a node's /v1/tracking answers as tables (or its JSON with --json).
// Connection flags and error reporting are those of the operator commands
// (ops.go); reads are local to the node unless --consistent.

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// Wire types of /v1/tracking (node.TxTrackingResponse and friends; cmd
// does not import tracking).
type (
	trackTx struct {
		ID             string    `json:"id"`
		Dataset        string    `json:"dataset"`
		Source         string    `json:"source"`
		ContentType    string    `json:"content_type"`
		Bytes          int64     `json:"bytes"`
		Created        time.Time `json:"created"`
		Updated        time.Time `json:"updated"`
		Status         string    `json:"status"`
		In             int64     `json:"in"`
		Accepted       int64     `json:"accepted"`
		Rejected       int64     `json:"rejected"`
		Node           string    `json:"node"`
		IdempotencyKey string    `json:"idempotency_key"`
	}
	trackBlock struct {
		Stage    string    `json:"stage"`
		Status   string    `json:"status"`
		Started  time.Time `json:"started"`
		Finished time.Time `json:"finished"`
		RowsIn   int64     `json:"rows_in"`
		RowsOut  int64     `json:"rows_out"`
		Error    string    `json:"error"`
		Node     string    `json:"node"`
		CPUTime  int64     `json:"cpu_time_ns"`
		Bytes    int64     `json:"bytes"`
		Parts    int       `json:"parts"`
	}
	trackRejection struct {
		Row      int    `json:"row"`
		ObjectID string `json:"object_id"`
		Field    string `json:"field"`
		Reason   string `json:"reason"`
	}
	trackTxResp struct {
		Transaction trackTx      `json:"transaction"`
		Blocks      []trackBlock `json:"blocks"`
		Progress    struct {
			StagesDone    int    `json:"stages_done"`
			StagesTotal   int    `json:"stages_total"`
			CurrentStage  string `json:"current_stage"`
			LastCompleted string `json:"last_completed"`
			LastError     string `json:"last_error"`
		} `json:"progress"`
		Rejections []trackRejection `json:"rejections"`
		NextCursor string           `json:"next_cursor"`
		Node       string           `json:"node"`
		Index      uint64           `json:"index"`
	}
	trackListResp struct {
		Transactions []trackTx `json:"transactions"`
		NextCursor   string    `json:"next_cursor"`
		Node         string    `json:"node"`
		Index        uint64    `json:"index"`
	}
	trackEvent struct {
		Time    time.Time `json:"time"`
		TxID    string    `json:"tx_id"`
		Dataset string    `json:"dataset"`
		Row     int       `json:"row"`
		Stage   string    `json:"stage"`
		Outcome string    `json:"outcome"`
		Field   string    `json:"field"`
		Reason  string    `json:"reason"`
	}
	trackObjectResp struct {
		ObjectID   string       `json:"object_id"`
		Events     []trackEvent `json:"events"`
		NextCursor string       `json:"next_cursor"`
		Node       string       `json:"node"`
		Index      uint64       `json:"index"`
	}
	trackGroup struct {
		Group          string  `json:"group"`
		Stage          string  `json:"stage"`
		Blocks         int64   `json:"blocks"`
		FailedBlocks   int64   `json:"failed_blocks"`
		In             int64   `json:"in"`
		OK             int64   `json:"ok"`
		Failed         int64   `json:"failed"`
		Skipped        int64   `json:"skipped"`
		P50MS          float64 `json:"p50_ms"`
		P99MS          float64 `json:"p99_ms"`
		LatencySeconds float64 `json:"latency_seconds"`
		Bytes          int64   `json:"bytes"`
		CPUSeconds     float64 `json:"cpu_seconds"`
		Share          float64 `json:"share"`
	}
	trackStatsResp struct {
		From          time.Time `json:"from"`
		To            time.Time `json:"to"`
		BucketSeconds int64     `json:"bucket_seconds"`
		By            string    `json:"by"`
		Buckets       []struct {
			Start  time.Time    `json:"start"`
			Groups []trackGroup `json:"groups"`
		} `json:"buckets"`
		Stages     []trackGroup `json:"stages"`
		Bottleneck string       `json:"bottleneck"`
		Node       string       `json:"node"`
		Index      uint64       `json:"index"`
	}
)

// trackFlags are the flags every track subcommand shares.
type trackFlags struct {
	opsFlags
	consistent bool
	limit      int
	cursor     string
}

func (f *trackFlags) register(cmd *cobra.Command, paged bool) {
	f.opsFlags.register(cmd)
	cmd.Flags().BoolVar(&f.consistent, "consistent", false, "read through the leader (read-your-writes across nodes)")
	if paged {
		cmd.Flags().IntVar(&f.limit, "limit", 0, "page size (node default 100, at most 1000)")
		cmd.Flags().StringVar(&f.cursor, "cursor", "", "next_cursor of the previous page")
	}
}

// query builds the common query parameters plus extra (empty values are
// left out).
func (f *trackFlags) query(extra ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] != "" {
			q.Set(extra[i], extra[i+1])
		}
	}
	if f.consistent {
		q.Set("consistent", "true")
	}
	if f.limit > 0 {
		q.Set("limit", fmt.Sprint(f.limit))
	}
	if f.cursor != "" {
		q.Set("cursor", f.cursor)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// runTrack wires a track command: client, timeout, GET path, then raw JSON
// or the table printer.
func runTrack[T any](f *trackFlags, path func(args []string) string, print func(w io.Writer, v *T) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := f.client()
		if err != nil {
			return err
		}
		ctx, cancel := withTimeout(cmd.Context(), f.timeout)
		defer cancel()
		var v T
		raw, err := c.getJSON(ctx, path(args), &v)
		if err != nil {
			return err
		}
		if f.json {
			return writeRawJSON(cmd.OutOrStdout(), raw)
		}
		return print(cmd.OutOrStdout(), &v)
	}
}

func newTrackCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "track",
		Short: "Data-flow tracking: where a transaction or object went, and per-stage statistics",
	}
	cmd.AddCommand(newTrackTxCmd(), newTrackObjectCmd(), newTrackListCmd(), newTrackStatsCmd())
	return cmd
}

func newTrackTxCmd() *cobra.Command {
	f := &trackFlags{}
	cmd := &cobra.Command{
		Use:   "tx TX_ID",
		Short: "Show a transaction: its stages (blocks), progress and rejected rows",
		Args:  cobra.ExactArgs(1),
	}
	f.register(cmd, true)
	cmd.RunE = runTrack(f, func(args []string) string {
		return "/v1/tracking/transactions/" + url.PathEscape(args[0]) + f.query()
	}, writeTrackTx)
	return cmd
}

func writeTrackTx(w io.Writer, v *trackTxResp) error {
	t := v.Transaction
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "TRANSACTION\t%s\n", t.ID)
	fmt.Fprintf(tw, "dataset\t%s\n", t.Dataset)
	fmt.Fprintf(tw, "status\t%s\n", t.Status)
	fmt.Fprintf(tw, "rows\t%d in, %d accepted, %d rejected\n", t.In, t.Accepted, t.Rejected)
	fmt.Fprintf(tw, "source\t%s (%s, %d bytes) via %s\n", t.Source, opsDash(t.ContentType), t.Bytes, opsDash(t.Node))
	fmt.Fprintf(tw, "created\t%s\n", t.Created.Format(time.RFC3339Nano))
	fmt.Fprintf(tw, "updated\t%s\n", t.Updated.Format(time.RFC3339Nano))
	if t.IdempotencyKey != "" {
		fmt.Fprintf(tw, "idempotency key\t%s\n", t.IdempotencyKey)
	}
	p := v.Progress
	fmt.Fprintf(tw, "progress\t%d/%d stages, last completed %s, current %s\n", p.StagesDone, p.StagesTotal, opsDash(p.LastCompleted), opsDash(p.CurrentStage))
	if p.LastError != "" {
		fmt.Fprintf(tw, "last error\t%s\n", p.LastError)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tSTATUS\tSTARTED\tDURATION\tROWS IN\tROWS OUT\tCPU\tBYTES\tPARTS\tNODE\tERROR")
	for _, b := range v.Blocks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%d\t%d\t%s\t%s\n", b.Stage, b.Status, b.Started.Format("15:04:05.000"),
			b.Finished.Sub(b.Started), b.RowsIn, b.RowsOut, time.Duration(b.CPUTime), b.Bytes, b.Parts, opsDash(b.Node), opsDash(b.Error))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(v.Rejections) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ROW\tOBJECT\tFIELD\tREASON")
		for _, r := range v.Rejections {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Row, opsDash(r.ObjectID), opsDash(r.Field), r.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return writeTrackFooter(w, v.NextCursor, v.Node, v.Index)
}

func writeTrackFooter(w io.Writer, next, node string, index uint64) error {
	if next != "" {
		if _, err := fmt.Fprintf(w, "(more: --cursor %s)\n", next); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "(answered by %s at index %d)\n", opsDash(node), index)
	return err
}

func newTrackObjectCmd() *cobra.Command {
	f := &trackFlags{}
	cmd := &cobra.Command{
		Use:   "object OBJECT_ID",
		Short: "Show an object's journey: every transaction and stage it appeared in, rejections with field and reason",
		Args:  cobra.ExactArgs(1),
	}
	f.register(cmd, true)
	cmd.RunE = runTrack(f, func(args []string) string {
		return "/v1/tracking/objects/" + url.PathEscape(args[0]) + f.query()
	}, writeTrackObject)
	return cmd
}

func writeTrackObject(w io.Writer, v *trackObjectResp) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTX\tDATASET\tROW\tSTAGE\tOUTCOME\tFIELD\tREASON")
	for _, e := range v.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339Nano), e.TxID, opsDash(e.Dataset), e.Row,
			e.Stage, e.Outcome, opsDash(e.Field), opsDash(e.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeTrackFooter(w, v.NextCursor, v.Node, v.Index)
}

func newTrackListCmd() *cobra.Command {
	f := &trackFlags{}
	var dataset, source, status, from, to string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List transactions, newest first, filtered by dataset, source, status and time",
		Args:  cobra.NoArgs,
	}
	f.register(cmd, true)
	fs := cmd.Flags()
	fs.StringVar(&dataset, "dataset", "", "only this dataset")
	fs.StringVar(&source, "source", "", "only this source (http, http3, file, webhook, sql, job)")
	fs.StringVar(&status, "status", "", "only this status (in_progress, succeeded, partially_failed, failed)")
	fs.StringVar(&from, "from", "", "created at or after (RFC 3339 or relative, e.g. -1h)")
	fs.StringVar(&to, "to", "", "created before (RFC 3339 or relative)")
	cmd.RunE = runTrack(f, func([]string) string {
		return "/v1/tracking/transactions" + f.query("dataset", dataset, "source", source, "status", status, "from", from, "to", to)
	}, writeTrackList)
	return cmd
}

func writeTrackList(w io.Writer, v *trackListResp) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TX\tCREATED\tDATASET\tSOURCE\tSTATUS\tIN\tACCEPTED\tREJECTED\tBYTES\tNODE")
	for _, t := range v.Transactions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", t.ID, t.Created.Format(time.RFC3339), opsDash(t.Dataset),
			opsDash(t.Source), t.Status, t.In, t.Accepted, t.Rejected, t.Bytes, opsDash(t.Node))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeTrackFooter(w, v.NextCursor, v.Node, v.Index)
}

func newTrackStatsCmd() *cobra.Command {
	f := &trackFlags{}
	var from, to, bucket, by string
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Per-stage statistics: rows in/ok/failed, p50/p99 latency, bytes, CPU, and the bottleneck stage",
		Args:  cobra.NoArgs,
	}
	f.register(cmd, false)
	fs := cmd.Flags()
	fs.StringVar(&from, "from", "-1h", "start (RFC 3339 or relative, e.g. -24h, -7d)")
	fs.StringVar(&to, "to", "now", "end (RFC 3339 or relative)")
	fs.StringVar(&bucket, "bucket", "", "bucket width: 1m, 1h or 1d (node default 1m)")
	fs.StringVar(&by, "by", "", "group by stage, dataset, source or node (node default stage)")
	cmd.RunE = runTrack(f, func([]string) string {
		return "/v1/tracking/stats" + f.query("from", from, "to", to, "bucket", bucket, "by", by)
	}, writeTrackStats)
	return cmd
}

func writeTrackStats(w io.Writer, v *trackStatsResp) error {
	if _, err := fmt.Fprintf(w, "%s .. %s, buckets of %s, by %s\n\n", v.From.Format(time.RFC3339), v.To.Format(time.RFC3339),
		time.Duration(v.BucketSeconds)*time.Second, v.By); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	header := "BUCKET\tGROUP\tSTAGE\tBLOCKS\tIN\tOK\tFAILED\tSKIPPED\tP50 MS\tP99 MS\tBYTES\tCPU S\t"
	fmt.Fprintln(tw, header)
	row := func(bucket string, g trackGroup) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.2f\t%.2f\t%d\t%.3f\t\n", bucket, opsDash(g.Group), g.Stage, g.Blocks,
			g.In, g.OK, g.Failed, g.Skipped, g.P50MS, g.P99MS, g.Bytes, g.CPUSeconds)
	}
	for _, b := range v.Buckets {
		for _, g := range b.Groups {
			row(b.Start.Format("2006-01-02 15:04"), g)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(v.Stages) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "STAGE\tBLOCKS\tIN\tOK\tFAILED\tP50 MS\tP99 MS\tLATENCY S\tSHARE\tBYTES\tCPU S\t")
		for _, g := range v.Stages {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.2f\t%.2f\t%.3f\t%.0f%%\t%d\t%.3f\t\n", g.Stage, g.Blocks, g.In, g.OK, g.Failed,
				g.P50MS, g.P99MS, g.LatencySeconds, g.Share*100, g.Bytes, g.CPUSeconds)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	bn := v.Bottleneck
	if bn == "" {
		bn = "- (no data)"
	}
	if _, err := fmt.Fprintf(w, "bottleneck: %s\n", strings.TrimSpace(bn)); err != nil {
		return err
	}
	return writeTrackFooter(w, "", v.Node, v.Index)
}
