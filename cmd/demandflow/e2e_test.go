package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/demandflow/demandflow/internal/sample"
)

// binPath is the demandflow binary built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "demandflow-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "demandflow")
	out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build demandflow: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a node process started from the built binary.
type proc struct {
	cmd  *exec.Cmd
	url  string
	logs *bytes.Buffer
}

func startProc(t *testing.T, dataDir string) *proc {
	t.Helper()
	_ = os.Remove(filepath.Join(dataDir, "addrs.json"))
	logs := &bytes.Buffer{}
	cmd := exec.Command(binPath, "node", "--data-dir", dataDir, "--http-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0", "--node-name", "e2e")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: logs}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join(dataDir, "addrs.json"))
		if err == nil {
			var a struct{ HTTP string }
			if json.Unmarshal(b, &a) == nil && a.HTTP != "" {
				p.url = "http://" + a.HTTP
				if resp, err := http.Get(p.url + "/healthz"); err == nil {
					resp.Body.Close()
					return p
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("node did not come up; logs:\n%s", logs)
	return nil
}

func post(t *testing.T, url, ct, key string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestKillAfterAck SIGKILLs the node right after acks and checks that every
// acked row is there after a restart, exactly once.
func TestKillAfterAck(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes; skipped with -short")
	}
	dir := t.TempDir()
	p := startProc(t, dir)
	schema, _ := json.Marshal(sample.Schema("exports"))
	if st, b := post(t, p.url+"/v1/datasets", "application/json", "", schema); st != 201 {
		t.Fatalf("create: %d %s", st, b)
	}
	rows, _ := (sample.Config{Products: 20, Markets: 3, Months: 24, BadRows: -1}).Rows()
	acked := 0
	const chunk = 120
	for i := 0; i < len(rows); i += chunk {
		var buf bytes.Buffer
		_ = sample.WriteNDJSON(&buf, sample.Header, rows[i:min(i+chunk, len(rows))])
		st, b := post(t, p.url+"/v1/datasets/exports/records", "application/x-ndjson", fmt.Sprintf("chunk-%d", i), buf.Bytes())
		if st != 200 {
			t.Fatalf("ingest: %d %s", st, b)
		}
		var r struct{ Accepted int }
		_ = json.Unmarshal(b, &r)
		acked += r.Accepted
	}
	// Crash right after the last ack.
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()

	p2 := startProc(t, dir)
	// A restarted node replays the Raft log into its FSM after it has a
	// leader again; a consistent read waits for that.
	resp, err := http.Get(p2.url + "/v1/datasets/exports?consistent=true")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Dataset struct {
			Series       int   `json:"series"`
			RowsAccepted int64 `json:"rows_accepted"`
		} `json:"dataset"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if info.Dataset.Series != 60 || info.Dataset.RowsAccepted != int64(acked) || acked != len(rows) {
		t.Fatalf("after kill+restart: got %d series, %d rows, want 60 series, %d acked rows (of %d)", info.Dataset.Series, info.Dataset.RowsAccepted, acked, len(rows))
	}
	// Count stored observations series by series: every acked row once.
	stored := 0
	cursor := ""
	for {
		resp, err := http.Get(p2.url + "/v1/datasets/exports/series?limit=1000" + cursor)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Series []struct {
				ID string `json:"series_id"`
			} `json:"series"`
			Next string `json:"next_cursor"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		for _, s := range page.Series {
			r, err := http.Get(p2.url + "/v1/datasets/exports/series/" + s.ID + "/observations")
			if err != nil {
				t.Fatal(err)
			}
			var obs struct{ Observations []any }
			_ = json.NewDecoder(r.Body).Decode(&obs)
			r.Body.Close()
			stored += len(obs.Observations)
		}
		if page.Next == "" {
			break
		}
		cursor = "&cursor=" + page.Next
	}
	if stored != acked {
		t.Errorf("stored observations: got %d, want %d acked", stored, acked)
	}
	// Retrying an acked request after the crash stores nothing twice.
	var buf bytes.Buffer
	_ = sample.WriteNDJSON(&buf, sample.Header, rows[:min(chunk, len(rows))])
	st, b := post(t, p2.url+"/v1/datasets/exports/records", "application/x-ndjson", "chunk-0", buf.Bytes())
	if st != 200 || !bytes.Contains(b, []byte(`"replayed":true`)) {
		t.Errorf("retry after crash: got %d %s, want a replayed result", st, b)
	}
}

// TestDemoCommand runs `demandflow demo --exit` on port 0 and checks its
// summary.
func TestDemoCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the full sample; skipped with -short")
	}
	dir := t.TempDir()
	cmd := exec.Command(binPath, "demo", "--exit", "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0", "--log-level", "warn")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"rows accepted:  359988", "rows rejected:  12", "series stored:  6000"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
