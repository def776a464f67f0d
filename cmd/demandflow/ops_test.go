package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

const (
	membersJSON = `{"members":[
 {"name":"n1","addr":"127.0.0.1:7946","status":"alive","raft_addr":"127.0.0.1:7071","http":"127.0.0.1:7070","http3":"127.0.0.1:7070","version":"v1","voter":true,"leader":true},
 {"name":"n2","addr":"127.0.0.1:7947","status":"suspect","raft_addr":"127.0.0.1:7073","http":"127.0.0.1:7072","http3":"127.0.0.1:7072","version":"v1","voter":true,"leader":false},
 {"name":"n3","addr":"127.0.0.1:7948","status":"alive","raft_addr":"127.0.0.1:7075","http":"127.0.0.1:7074","http3":"","version":"v1","voter":false,"leader":false}],
 "node":"n1","index":42}`
	raftJSON = `{"state":"Follower","leader":{"id":"n1","address":"127.0.0.1:7071"},"term":3,"last_index":50,"commit_index":50,"applied_index":49,
 "peers":[{"id":"n1","address":"127.0.0.1:7071","suffrage":"Voter"},{"id":"n2","address":"127.0.0.1:7073","suffrage":"Voter"},{"id":"n3","address":"127.0.0.1:7075","suffrage":"Nonvoter"}],
 "node":"n2","index":49}`
	alarmsJSON = `{"active":[{"id":"a1","kind":"node_down","subject":"n3","severity":"critical","message":"n3 is dead","raised_at":"2026-01-02T03:04:05Z"}],
 "history":[{"id":"a0","kind":"apply_lag","subject":"n2","severity":"warning","message":"lagging","raised_at":"2026-01-01T00:00:00Z","cleared_at":"2026-01-01T00:01:00Z"}],
 "local":[{"id":"l1","kind":"quorum_lost","subject":"n2","severity":"critical","message":"no quorum","raised_at":"2026-01-02T03:04:06Z"}],
 "node":"n2","index":7}`
)

// fakeOpsNode serves the operator endpoints with canned JSON and records
// what it was sent.
type fakeOpsNode struct {
	snapshot    []byte
	restored    []byte
	transferred string
}

func (f *fakeOpsNode) handler() http.Handler {
	mux := http.NewServeMux()
	js := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, body)
		}
	}
	mux.HandleFunc("GET /v1/cluster/members", func(w http.ResponseWriter, r *http.Request) {
		// The leader n1 is this server, so leader-only calls come back here.
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, strings.Replace(membersJSON, `"http":"127.0.0.1:7070"`, `"http":"`+r.Host+`"`, 1))
	})
	mux.HandleFunc("GET /v1/cluster/raft", js(raftJSON))
	mux.HandleFunc("GET /v1/alarms", js(alarmsJSON))
	mux.HandleFunc("POST /v1/cluster/leader/transfer", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ To string }
		b, _ := io.ReadAll(r.Body)
		if len(b) > 0 {
			if err := json.Unmarshal(b, &in); err != nil {
				w.WriteHeader(400)
				io.WriteString(w, `{"error":"bad json"}`)
				return
			}
		}
		if in.To == "n9" {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"unknown node \"n9\""}`)
			return
		}
		f.transferred = in.To
		if in.To == "" {
			in.To = "n2"
		}
		io.WriteString(w, `{"leader":"`+in.To+`"}`)
	})
	mux.HandleFunc("GET /v1/cluster/snapshot", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(f.snapshot)
	})
	mux.HandleFunc("POST /v1/cluster/snapshot", func(w http.ResponseWriter, r *http.Request) {
		f.restored, _ = io.ReadAll(r.Body)
		io.WriteString(w, `{"restored":true,"index":77}`)
	})
	return mux
}

// runOpsCmd executes cmd with args and returns stdout and the error.
func runOpsCmd(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

func TestOpsTables(t *testing.T) {
	f := &fakeOpsNode{}
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	tests := []struct {
		name string
		cmd  func() *cobra.Command
		args []string
		want []string
	}{
		{"members", newMembersCmd, []string{"--addr", srv.URL},
			[]string{"NAME", "n1", "alive", "leader", "n2", "suspect", "voter", "n3", "nonvoter", "127.0.0.1:7075", "as seen by n1 at index 42"}},
		{"raft peers", newRaftCmd, []string{"peers", "--addr", srv.URL},
			[]string{"ID", "n1", "127.0.0.1:7071", "leader", "n3", "false", "node n2: state Follower, leader n1, term 3", "applied 49"}},
		{"alarms", newAlarmsCmd, []string{"--addr", srv.URL},
			[]string{"cluster", "critical", "node_down", "n3 is dead", "local", "quorum_lost", "no quorum"}},
		{"alarms history", newAlarmsCmd, []string{"--addr", srv.URL, "--history"},
			[]string{"history", "apply_lag", "cleared 2026-01-01T00:01:00Z"}},
		{"leader transfer", newLeaderCmd, []string{"transfer", "--addr", srv.URL, "--to", "n3"},
			[]string{"new leader: n3"}},
		{"leader transfer any", newLeaderCmd, []string{"transfer", "--addr", srv.URL},
			[]string{"new leader: n2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runOpsCmd(t, tc.cmd(), tc.args...)
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
	if f.transferred != "" {
		t.Errorf("last transfer: got to=%q, want empty (no body member)", f.transferred)
	}
}

func TestOpsJSON(t *testing.T) {
	srv := httptest.NewServer((&fakeOpsNode{}).handler())
	t.Cleanup(srv.Close)
	tests := []struct {
		name string
		cmd  func() *cobra.Command
		args []string
		key  string
	}{
		{"members", newMembersCmd, []string{"--addr", srv.URL, "--json"}, "members"},
		{"raft peers", newRaftCmd, []string{"peers", "--json", "--addr", srv.URL}, "peers"},
		{"alarms", newAlarmsCmd, []string{"--json", "--addr", srv.URL}, "local"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runOpsCmd(t, tc.cmd(), tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			if _, ok := m[tc.key]; !ok {
				t.Errorf("JSON lacks %q: %s", tc.key, out)
			}
		})
	}
}

func TestOpsEnvAddr(t *testing.T) {
	srv := httptest.NewServer((&fakeOpsNode{}).handler())
	t.Cleanup(srv.Close)
	t.Setenv("DEMANDFLOW_ADDR", strings.TrimPrefix(srv.URL, "http://"))
	out, err := runOpsCmd(t, newMembersCmd())
	if err != nil || !strings.Contains(out, "n3") {
		t.Fatalf("got %v, %q; want the members table from DEMANDFLOW_ADDR", err, out)
	}
}

func TestOpsErrors(t *testing.T) {
	srv := httptest.NewServer((&fakeOpsNode{}).handler())
	t.Cleanup(srv.Close)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":"cluster: no leader"}`)
	}))
	t.Cleanup(down.Close)
	// A port nobody listens on: bind, note, close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String()
	l.Close()

	tests := []struct {
		name string
		cmd  func() *cobra.Command
		args []string
		want []string
	}{
		{"refused", newMembersCmd, []string{"--addr", refused}, []string{"cannot reach node at " + refused}},
		{"503", newRaftCmd, []string{"peers", "--addr", down.URL}, []string{"503 Service Unavailable", "cluster: no leader"}},
		{"transfer 400", newLeaderCmd, []string{"transfer", "--addr", srv.URL, "--to", "n9"}, []string{"400 Bad Request", `unknown node "n9"`}},
		{"not found", newAlarmsCmd, []string{"--addr", srv.URL + "/nope"}, []string{"404"}},
		{"bad addr", newMembersCmd, []string{"--addr", "  "}, []string{"no node address"}},
		{"restore missing", newSnapshotCmd, []string{"restore", "--addr", srv.URL, filepath.Join(t.TempDir(), "none")}, []string{"no such file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runOpsCmd(t, tc.cmd(), tc.args...)
			if err == nil {
				t.Fatal("got no error, want one")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestSnapshotSaveRestore(t *testing.T) {
	f := &fakeOpsNode{snapshot: bytes.Repeat([]byte("snapshot-bytes\x00\x01"), 10000)}
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	file := filepath.Join(t.TempDir(), "backup.snap")

	out, err := runOpsCmd(t, newSnapshotCmd(), "save", "--addr", srv.URL, file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "saved snapshot") || !strings.Contains(out, "160000 bytes") {
		t.Errorf("save output: got %q", out)
	}
	got, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(got, f.snapshot) {
		t.Fatalf("saved file: got %d bytes (err %v), want %d identical bytes", len(got), err, len(f.snapshot))
	}
	if _, err := os.Stat(file + ".part"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}

	out, err = runOpsCmd(t, newSnapshotCmd(), "restore", "--addr", srv.URL, file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "at index 77") {
		t.Errorf("restore output: got %q", out)
	}
	if !bytes.Equal(f.restored, f.snapshot) {
		t.Errorf("restored body: got %d bytes, want the %d saved", len(f.restored), len(f.snapshot))
	}
}

func TestSnapshotSaveErrorKeepsFile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":"snapshot: disk full"}`)
	}))
	t.Cleanup(srv.Close)
	file := filepath.Join(t.TempDir(), "old.snap")
	if err := os.WriteFile(file, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := runOpsCmd(t, newSnapshotCmd(), "save", "--addr", srv.URL, file)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("got %v, want the server's error", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "old" {
		t.Errorf("existing file: got %q, want it untouched", b)
	}
}

// TestOpsSendsToLeader: leader transfer and snapshot restore given a
// follower's address go to the leader it names.
func TestOpsSendsToLeader(t *testing.T) {
	leader := &fakeOpsNode{}
	ls := httptest.NewServer(leader.handler())
	t.Cleanup(ls.Close)
	lhost := strings.TrimPrefix(ls.URL, "http://")
	follower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/cluster/raft":
			io.WriteString(w, `{"state":"Follower","leader":{"id":"n1","address":"127.0.0.1:7071"},"node":"n2"}`)
		case "/v1/cluster/members":
			io.WriteString(w, `{"members":[{"name":"n1","status":"alive","raft_addr":"127.0.0.1:7071","http":"`+lhost+`","leader":true},{"name":"n2","status":"alive"}],"node":"n2"}`)
		default:
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"error":"must run on the leader"}`)
		}
	}))
	t.Cleanup(follower.Close)
	out, err := runOpsCmd(t, newLeaderCmd(), "transfer", "--addr", follower.URL, "--to", "n3")
	if err != nil || !strings.Contains(out, "new leader: n3") || leader.transferred != "n3" {
		t.Fatalf("transfer via follower: got %v %q, leader saw to=%q", err, out, leader.transferred)
	}
	file := filepath.Join(t.TempDir(), "s.snap")
	if err := os.WriteFile(file, []byte("snap"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runOpsCmd(t, newSnapshotCmd(), "restore", "--addr", follower.URL, file); err != nil || string(leader.restored) != "snap" {
		t.Fatalf("restore via follower: got %v, leader got %q", err, leader.restored)
	}
}
