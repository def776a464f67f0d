package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/demandflow/demandflow/cluster"
)

// clusterMembers answers GET /v1/cluster/members.
func (n *Node) clusterMembers(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"members": n.cl.Members(), "node": n.cfg.NodeName, "index": n.cl.Store().AppliedIndex()})
	return nil
}

// clusterRaft answers GET /v1/cluster/raft.
func (n *Node) clusterRaft(w http.ResponseWriter, r *http.Request) error {
	info, err := n.cl.RaftInfo()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		cluster.RaftInfo
		Node  string `json:"node"`
		Index uint64 `json:"index"`
	}{info, n.cfg.NodeName, n.cl.Store().AppliedIndex()})
	return nil
}

// leaderTransfer answers POST /v1/cluster/leader/transfer {"to": "n2"}.
func (n *Node) leaderTransfer(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		To string `json:"to"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
	if err != nil {
		return badRequest("read body: "+err.Error(), nil)
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return badRequest("invalid JSON: "+jsonErr(err), nil)
		}
	}
	leader, err := n.cl.LeaderTransfer(r.Context(), req.To)
	if err != nil {
		return &apiError{status: http.StatusConflict, msg: err.Error(), detail: map[string]any{"leader_http": n.cl.LeaderHTTP()}}
	}
	writeJSON(w, http.StatusOK, map[string]any{"leader": leader, "node": n.cfg.NodeName})
	return nil
}

// snapshotSave streams a Raft snapshot of the whole state.
func (n *Node) snapshotSave(w http.ResponseWriter, r *http.Request) error {
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		_, err := n.cl.SnapshotSave(r.Context(), pw)
		pw.CloseWithError(err)
		errc <- err
	}()
	// Read the header line first so a failing snapshot still gets a JSON
	// error instead of a truncated 200.
	buf := make([]byte, 32<<10)
	k, err := io.ReadAtLeast(pr, buf, 1)
	if err != nil {
		_ = pr.Close()
		<-errc
		return fmt.Errorf("snapshot: %w", err)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="demandflow.snap"`)
	_, _ = w.Write(buf[:k])
	_, _ = io.Copy(w, pr)
	<-errc
	return nil
}

// snapshotRestore replaces the cluster state with an uploaded snapshot.
func (n *Node) snapshotRestore(w http.ResponseWriter, r *http.Request) error {
	index, err := n.cl.SnapshotRestore(r.Context(), r.Body)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return err
		}
		return &apiError{status: http.StatusConflict, msg: err.Error(), detail: map[string]any{"leader_http": n.cl.LeaderHTTP()}}
	}
	w.Header().Set("X-Demandflow-Index", strconv.FormatUint(index, 10))
	writeJSON(w, http.StatusOK, map[string]any{"restored": true, "index": index, "node": n.cfg.NodeName})
	return nil
}
