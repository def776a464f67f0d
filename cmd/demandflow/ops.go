package main

// Operator commands: members, raft peers, leader transfer, snapshot
// save|restore and alarms. Each talks to one node (--addr) over the HTTP
// API, prints a table (or the node's JSON with --json) and exits non-zero
// with a clear message on failure: an unreachable node is named by its
// address, an HTTP error shows the status and the server's error text.
//
// These calls are not retried: an operator wants to know at once that the
// node they named is down, and "leader transfer" and "snapshot restore" are
// not idempotent.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// opsFlags are the connection and output flags of the operator commands.
type opsFlags struct {
	addr     string
	json     bool
	token    string
	timeout  time.Duration
	caFile   string
	pin      string
	insecure bool
}

func (o *opsFlags) register(cmd *cobra.Command) {
	def := os.Getenv("DEMANDFLOW_ADDR")
	if def == "" {
		def = "http://127.0.0.1:7070"
	}
	fs := cmd.PersistentFlags()
	fs.StringVar(&o.addr, "addr", def, "node base URL (env DEMANDFLOW_ADDR)")
	fs.BoolVar(&o.json, "json", false, "print the node's JSON instead of a table")
	fs.StringVar(&o.token, "token", os.Getenv("DEMANDFLOW_TOKEN"), "API key (env DEMANDFLOW_TOKEN)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "time limit of the request (snapshot transfers: of each read/write pause, not the whole transfer)")
	fs.StringVar(&o.caFile, "ca", "", "PEM CA bundle to verify the node certificate with (https URLs)")
	fs.StringVar(&o.pin, "pin", "", "hex SHA-256 fingerprint of the node certificate (addrs.json \"fingerprint\"; https URLs)")
	fs.BoolVar(&o.insecure, "insecure", false, "skip certificate verification (testing only; prefer --pin)")
}

// opsClient is a non-retrying JSON/octet-stream caller of one node.
type opsClient struct {
	base  string
	token string
	hc    *http.Client
}

func (o *opsFlags) client() (*opsClient, error) {
	a := strings.TrimSpace(o.addr)
	if a == "" {
		return nil, errors.New("no node address (--addr)")
	}
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	tlsConf, err := clientTLS(o.caFile, o.pin, o.insecure)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	tr.ResponseHeaderTimeout = o.timeout
	return &opsClient{base: strings.TrimRight(a, "/"), token: o.token,
		hc: &http.Client{Transport: tr, Timeout: 0}}, nil
}

// httpStatusError is an error status from the node.
type httpStatusError struct {
	status int
	msg    string
}

func (e *httpStatusError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("%d %s", e.status, http.StatusText(e.status))
	}
	return fmt.Sprintf("%d %s: %s", e.status, http.StatusText(e.status), e.msg)
}

// do sends one request and returns the response with an open body on a
// 2xx status; any other status is an *httpStatusError.
func (c *opsClient) do(ctx context.Context, method, path, ct string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, connError(c.base, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var eb struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
			msg = eb.Error
		}
		return nil, fmt.Errorf("%s %s: %w", method, c.base+path, &httpStatusError{status: resp.StatusCode, msg: msg})
	}
	return resp, nil
}

// connError names the address in a transport error.
func connError(base string, err error) error {
	var ne *net.OpError
	switch {
	case errors.As(err, &ne) && ne.Op == "dial":
		return fmt.Errorf("cannot reach node at %s: %v (is it running? set --addr or DEMANDFLOW_ADDR)", base, ne.Err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("node at %s did not answer in time: %w", base, err)
	default:
		return fmt.Errorf("node at %s: %w", base, err)
	}
}

// getJSON GETs path and returns the raw body and decodes it into out.
func (c *opsClient) getJSON(ctx context.Context, path string, out any) ([]byte, error) {
	return c.callJSON(ctx, http.MethodGet, path, nil, out)
}

func (c *opsClient) callJSON(ctx context.Context, method, path string, in, out any) ([]byte, error) {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.do(ctx, method, path, ct, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, connError(c.base, err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("%s %s: decode response: %w", method, c.base+path, err)
		}
	}
	return b, nil
}

// Wire types of the operator endpoints (DESIGN.md "Cluster").
type (
	memberInfo struct {
		Name     string `json:"name"`
		Addr     string `json:"addr"`
		Status   string `json:"status"`
		RaftAddr string `json:"raft_addr"`
		HTTP     string `json:"http"`
		HTTP3    string `json:"http3"`
		Version  string `json:"version"`
		Voter    bool   `json:"voter"`
		Leader   bool   `json:"leader"`
	}
	membersResp struct {
		Members []memberInfo `json:"members"`
		Node    string       `json:"node"`
		Index   uint64       `json:"index"`
	}
	raftPeer struct {
		ID       string `json:"id"`
		Address  string `json:"address"`
		Suffrage string `json:"suffrage"`
	}
	raftResp struct {
		State  string `json:"state"`
		Leader struct {
			ID      string `json:"id"`
			Address string `json:"address"`
		} `json:"leader"`
		Term         uint64     `json:"term"`
		LastIndex    uint64     `json:"last_index"`
		CommitIndex  uint64     `json:"commit_index"`
		AppliedIndex uint64     `json:"applied_index"`
		Peers        []raftPeer `json:"peers"`
		Node         string     `json:"node"`
		Index        uint64     `json:"index"`
	}
	alarm struct {
		ID        string `json:"id"`
		Kind      string `json:"kind"`
		Subject   string `json:"subject"`
		Severity  string `json:"severity"`
		Message   string `json:"message"`
		RaisedAt  string `json:"raised_at"`
		ClearedAt string `json:"cleared_at,omitempty"`
		Node      string `json:"node,omitempty"`
	}
	alarmsResp struct {
		Active  []alarm `json:"active"`
		History []alarm `json:"history"`
		Local   []alarm `json:"local"`
		Node    string  `json:"node"`
		Index   uint64  `json:"index"`
	}
)

// toLeader returns a client of the leader's API, found through the node
// at c: leader transfer and snapshot restore must run on the leader, and
// an operator should not have to find it first. c itself when it leads or
// when the leader's API address is unknown (the node then answers with
// its own error).
func (c *opsClient) toLeader(ctx context.Context) *opsClient {
	var r raftResp
	if _, err := c.getJSON(ctx, "/v1/cluster/raft", &r); err != nil || r.State == "Leader" || r.Leader.ID == "" {
		return c
	}
	var m membersResp
	if _, err := c.getJSON(ctx, "/v1/cluster/members", &m); err != nil {
		return c
	}
	for _, x := range m.Members {
		if (x.Name == r.Leader.ID || x.RaftAddr == r.Leader.Address) && x.HTTP != "" {
			scheme, _, _ := strings.Cut(c.base, "://")
			return &opsClient{base: scheme + "://" + x.HTTP, token: c.token, hc: c.hc}
		}
	}
	return c
}

// newOpsCmds returns the operator commands, ready for root.AddCommand.
func newOpsCmds() []*cobra.Command {
	return []*cobra.Command{newMembersCmd(), newRaftCmd(), newLeaderCmd(), newSnapshotCmd(), newAlarmsCmd()}
}

// runOps wires an ops command's RunE: a client, a context bounded by the
// command's, and the output writer.
func runOps(o *opsFlags, f func(ctx context.Context, c *opsClient, w io.Writer) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		c, err := o.client()
		if err != nil {
			return err
		}
		return f(cmd.Context(), c, cmd.OutOrStdout())
	}
}

// withTimeout bounds a non-streaming call.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

func newMembersCmd() *cobra.Command {
	o := &opsFlags{}
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List the cluster members as the node at --addr sees them (gossip status, role, addresses)",
		Args:  cobra.NoArgs,
	}
	o.register(cmd)
	cmd.RunE = runOps(o, func(ctx context.Context, c *opsClient, w io.Writer) error {
		ctx, cancel := withTimeout(ctx, o.timeout)
		defer cancel()
		var r membersResp
		raw, err := c.getJSON(ctx, "/v1/cluster/members", &r)
		if err != nil {
			return err
		}
		if o.json {
			return writeRawJSON(w, raw)
		}
		return writeMembers(w, &r)
	})
	return cmd
}

func writeMembers(w io.Writer, r *membersResp) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tROLE\tGOSSIP\tRAFT\tHTTP\tVERSION")
	for _, m := range r.Members {
		role := "nonvoter"
		if m.Voter {
			role = "voter"
		}
		if m.Leader {
			role = "leader"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.Status, role, opsDash(m.Addr), opsDash(m.RaftAddr), opsDash(m.HTTP), opsDash(m.Version))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "(as seen by %s at index %d)\n", opsDash(r.Node), r.Index)
	return err
}

func newRaftCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "raft", Short: "Raft state of the cluster"}
	o := &opsFlags{}
	peers := &cobra.Command{
		Use:   "peers",
		Short: "List the Raft configuration (voters, non-voters, leader) and the node's Raft state",
		Args:  cobra.NoArgs,
	}
	o.register(peers)
	peers.RunE = runOps(o, func(ctx context.Context, c *opsClient, w io.Writer) error {
		ctx, cancel := withTimeout(ctx, o.timeout)
		defer cancel()
		var r raftResp
		raw, err := c.getJSON(ctx, "/v1/cluster/raft", &r)
		if err != nil {
			return err
		}
		if o.json {
			return writeRawJSON(w, raw)
		}
		return writeRaftPeers(w, &r)
	})
	cmd.AddCommand(peers)
	return cmd
}

func writeRaftPeers(w io.Writer, r *raftResp) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tSTATE\tVOTER")
	for _, p := range r.Peers {
		state := "follower"
		if p.ID == r.Leader.ID && r.Leader.ID != "" || p.Address == r.Leader.Address && r.Leader.Address != "" {
			state = "leader"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\n", p.ID, p.Address, state, p.Suffrage == "Voter")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	leader := r.Leader.ID
	if leader == "" {
		leader = "none"
	}
	_, err := fmt.Fprintf(w, "node %s: state %s, leader %s, term %d, last %d, commit %d, applied %d\n",
		opsDash(r.Node), r.State, leader, r.Term, r.LastIndex, r.CommitIndex, r.AppliedIndex)
	return err
}

func newLeaderCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "leader", Short: "Raft leadership"}
	o := &opsFlags{}
	var to string
	transfer := &cobra.Command{
		Use:   "transfer [--to NODE]",
		Short: "Ask the leader to hand leadership to another voter (--to NODE, or one Raft picks); --addr may be any node",
		Args:  cobra.NoArgs,
	}
	o.register(transfer)
	transfer.Flags().StringVar(&to, "to", "", "node name of the new leader (default: Raft picks the most up-to-date voter)")
	transfer.RunE = runOps(o, func(ctx context.Context, c *opsClient, w io.Writer) error {
		ctx, cancel := withTimeout(ctx, o.timeout)
		defer cancel()
		var in any
		if to != "" {
			in = map[string]string{"to": to}
		}
		var r struct {
			Leader string `json:"leader"`
		}
		raw, err := c.toLeader(ctx).callJSON(ctx, http.MethodPost, "/v1/cluster/leader/transfer", in, &r)
		if err != nil {
			return err
		}
		if o.json {
			return writeRawJSON(w, raw)
		}
		_, err = fmt.Fprintf(w, "leadership transferred; new leader: %s\n", r.Leader)
		return err
	})
	cmd.AddCommand(transfer)
	return cmd
}

func newSnapshotCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "snapshot", Short: "Save or restore a snapshot of the replicated state"}
	so := &opsFlags{}
	save := &cobra.Command{
		Use:   "save FILE",
		Short: "Stream a snapshot of the cluster state from the node at --addr into FILE",
		Long: `Save streams a point-in-time snapshot of the replicated state into FILE
(written to FILE.part first and renamed when complete, so FILE is either
the whole snapshot or untouched). "-" writes to stdout.`,
		Args: cobra.ExactArgs(1),
	}
	so.register(save)
	save.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := so.client()
		if err != nil {
			return err
		}
		return snapshotSave(cmd.Context(), c, args[0], so.json, cmd.OutOrStdout())
	}
	ro := &opsFlags{}
	restore := &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the cluster state with the snapshot in FILE (sent to the leader, found through --addr)",
		Long: `Restore sends FILE (made by "snapshot save") to the node at --addr, which
replaces the replicated state of the whole cluster with it. Everything
written since the snapshot was taken is lost.`,
		Args: cobra.ExactArgs(1),
	}
	ro.register(restore)
	restore.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := ro.client()
		if err != nil {
			return err
		}
		return snapshotRestore(cmd.Context(), c.toLeader(cmd.Context()), args[0], ro.json, cmd.OutOrStdout())
	}
	cmd.AddCommand(save, restore)
	return cmd
}

func snapshotSave(ctx context.Context, c *opsClient, file string, asJSON bool, w io.Writer) error {
	resp, err := c.do(ctx, http.MethodGet, "/v1/cluster/snapshot", "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out io.Writer
	var f *os.File
	tmp := ""
	if file == "-" {
		out = os.Stdout
		w = os.Stderr // keep stdout for the snapshot bytes
	} else {
		tmp = file + ".part"
		f, err = os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("snapshot save: %w", err)
		}
		out = f
	}
	n, err := io.Copy(out, resp.Body)
	if err != nil {
		if f != nil {
			f.Close()
			os.Remove(tmp)
		}
		return fmt.Errorf("snapshot save: after %d bytes: %w", n, connError(c.base, err))
	}
	if f != nil {
		if err := f.Sync(); err != nil {
			f.Close()
			os.Remove(tmp)
			return fmt.Errorf("snapshot save: %w", err)
		}
		if err := f.Close(); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("snapshot save: %w", err)
		}
		if err := os.Rename(tmp, file); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("snapshot save: %w", err)
		}
	}
	if asJSON {
		return json.NewEncoder(w).Encode(map[string]any{"file": file, "bytes": n, "node": resp.Header.Get("X-Demandflow-Node")})
	}
	name := file
	if abs, err := filepath.Abs(file); err == nil && file != "-" {
		name = abs
	}
	_, err = fmt.Fprintf(w, "saved snapshot: %s (%s bytes)\n", name, strconv.FormatInt(n, 10))
	return err
}

func snapshotRestore(ctx context.Context, c *opsClient, file string, asJSON bool, w io.Writer) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("snapshot restore: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("snapshot restore: %w", err)
	}
	if st.Size() == 0 {
		return fmt.Errorf("snapshot restore: %s is empty", file)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/cluster/snapshot", f)
	if err != nil {
		return err
	}
	req.ContentLength = st.Size()
	req.Header.Set("Content-Type", "application/octet-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return connError(c.base, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		msg := strings.TrimSpace(string(b))
		var eb struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
			msg = eb.Error
		}
		return fmt.Errorf("POST %s/v1/cluster/snapshot: %w", c.base, &httpStatusError{status: resp.StatusCode, msg: msg})
	}
	if asJSON {
		return writeRawJSON(w, b)
	}
	var r struct {
		Restored bool   `json:"restored"`
		Index    uint64 `json:"index"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("snapshot restore: decode response: %w", err)
	}
	if !r.Restored {
		return fmt.Errorf("snapshot restore: the node answered restored=false: %s", strings.TrimSpace(string(b)))
	}
	_, err = fmt.Fprintf(w, "restored snapshot %s (%d bytes) at index %d\n", file, st.Size(), r.Index)
	return err
}

func newAlarmsCmd() *cobra.Command {
	o := &opsFlags{}
	var history bool
	cmd := &cobra.Command{
		Use:   "alarms",
		Short: "List the active cluster alarms and the node's local alarms (--history: cleared ones too)",
		Args:  cobra.NoArgs,
	}
	o.register(cmd)
	cmd.Flags().BoolVar(&history, "history", false, "also list cleared alarms")
	cmd.RunE = runOps(o, func(ctx context.Context, c *opsClient, w io.Writer) error {
		ctx, cancel := withTimeout(ctx, o.timeout)
		defer cancel()
		var r alarmsResp
		raw, err := c.getJSON(ctx, "/v1/alarms", &r)
		if err != nil {
			return err
		}
		if o.json {
			return writeRawJSON(w, raw)
		}
		return writeAlarms(w, &r, history)
	})
	return cmd
}

func writeAlarms(w io.Writer, r *alarmsResp, history bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tSEVERITY\tKIND\tSUBJECT\tRAISED\tMESSAGE")
	rows := 0
	put := func(scope string, as []alarm) {
		for _, a := range as {
			raised := a.RaisedAt
			if a.ClearedAt != "" {
				raised += " (cleared " + a.ClearedAt + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", scope, opsDash(a.Severity), opsDash(a.Kind), opsDash(a.Subject), opsDash(raised), a.Message)
			rows++
		}
	}
	put("cluster", r.Active)
	put("local", r.Local)
	if history {
		put("history", r.History)
	}
	if rows == 0 {
		_, err := fmt.Fprintf(w, "no active alarms (node %s)\n", opsDash(r.Node))
		return err
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "(node %s, index %d)\n", opsDash(r.Node), r.Index)
	return err
}

func writeRawJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		_, err = w.Write(raw)
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

func opsDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
