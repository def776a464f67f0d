package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/demandflow/demandflow/internal/testutil"
	"github.com/demandflow/demandflow/node"
)

// startTrackNode runs an in-process node with a dataset and one ingest of
// two good rows and one rejected row; it returns the node's URL and the
// transaction id.
func startTrackNode(t *testing.T) (string, string) {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.NodeName = t.TempDir(), "t1"
	cfg.HTTPAddr, cfg.RaftAddr, cfg.GossipAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.TLSDisable = true
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := node.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	post := func(path, ct, body string) []byte {
		t.Helper()
		var out []byte
		// Retry 503 until the single-node Raft has elected itself.
		testutil.WaitFor(t, 15*time.Second, func() error {
			resp, err := http.Post(n.URL()+path, ct, strings.NewReader(body))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			if resp.StatusCode >= 300 {
				return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, buf.Bytes())
			}
			out = buf.Bytes()
			return nil
		})
		return out
	}
	post("/v1/datasets", "application/json", `{"name":"shop","frequency":"month","period":"period","dimensions":["product"],
		"measure":"qty","object_id":"oid","rules":{"qty":{"min":0}}}`)
	out := post("/v1/datasets/shop/records", "text/csv", "period,product,qty,oid\n2024-01,A,5,ord-1\n2024-02,A,-3,ord-2\n2024-01,B,7,ord-3\n")
	var r struct {
		TxID string `json:"tx_id"`
	}
	if err := json.Unmarshal(out, &r); err != nil || r.TxID == "" {
		t.Fatalf("ingest response %s: %v", out, err)
	}
	return n.URL(), r.TxID
}

func TestTrackCommands(t *testing.T) {
	addr, tx := startTrackNode(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"tx", []string{"tx", tx}, []string{"TRANSACTION", tx, "partially_failed", "2 accepted, 1 rejected",
			"STAGE", "ingress", "validate", "commit", "apply", "last completed apply", "ROW", "ord-2", "qty", "answered by t1"}},
		{"object rejected", []string{"object", "ord-2"}, []string{"TIME", tx, "shop", "validate", "rejected", "qty"}},
		{"object accepted", []string{"object", "ord-3"}, []string{tx, "apply", "accepted"}},
		{"list", []string{"list", "--dataset", "shop", "--from", "-1h"}, []string{"TX", tx, "shop", "http", "partially_failed"}},
		{"stats", []string{"stats", "--from", "-1h", "--to", "now", "--bucket", "1h"}, []string{"BUCKET", "ingress", "apply", "SHARE", "bottleneck: "}},
		{"stats by node", []string{"stats", "--by", "node"}, []string{"t1", "by node"}},
		{"json", []string{"tx", tx, "--json"}, []string{`"transaction": {`, `"node": "t1"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runOpsCmd(t, newTrackCmd(), append(tc.args, "--addr", addr)...)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	// Errors name the problem: unknown object (404), bad parameter (400).
	_, err := runOpsCmd(t, newTrackCmd(), "object", "nobody", "--addr", addr)
	var he *httpStatusError
	if !errors.As(err, &he) || he.status != http.StatusNotFound || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("unknown object: got %v, want a 404 naming it", err)
	}
	_, err = runOpsCmd(t, newTrackCmd(), "stats", "--bucket", "7s", "--addr", addr)
	if !errors.As(err, &he) || he.status != http.StatusBadRequest || !strings.Contains(err.Error(), "bucket") {
		t.Errorf("bad bucket: got %v, want a 400 naming bucket", err)
	}
}
