//go:build drill

package drill

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var binPath string

func TestMain(m *testing.M) {
	binPath = os.Getenv("DEMANDFLOW_BIN")
	dir := ""
	if binPath == "" {
		var err error
		dir, err = os.MkdirTemp("", "demandflow-drill-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		binPath = filepath.Join(dir, "demandflow")
		if out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/demandflow").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build demandflow: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

func TestFailoverDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 3-process cluster drill; skipped with -short")
	}
	report := filepath.Join(t.TempDir(), "drill.json")
	logs, err := os.Create(filepath.Join(t.ArtifactDir(), "drill.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	cmd := exec.CommandContext(t.Context(), binPath, "drill", "failover", "--nodes", "3", "--cycles", "3", "--json", report)
	cmd.Stdout, cmd.Stderr = logs, logs
	runErr := cmd.Run()
	b, err := os.ReadFile(report)
	if err != nil {
		out, _ := os.ReadFile(logs.Name())
		t.Fatalf("no report (drill: %v): %v\n%s", runErr, err, out)
	}
	var r struct {
		Cycles []struct {
			FailoverMS    *float64 `json:"failover_ms"`
			DetectMS      *float64 `json:"detect_ms"`
			ElectMS       *float64 `json:"elect_ms"`
			ErrorWindowMS *float64 `json:"error_window_ms"`
			Errors        *int     `json:"errors"`
		} `json:"cycles"`
		AckedRows     int64            `json:"acked_rows"`
		StoredRows    map[string]int64 `json:"stored_rows"`
		LostRows      *int64           `json:"lost_rows"`
		DuplicateRows *int64           `json:"duplicate_rows"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	if runErr != nil {
		t.Errorf("drill exited with %v; report:\n%s", runErr, b)
	}
	if len(r.Cycles) != 3 {
		t.Fatalf("cycles: got %d, want 3", len(r.Cycles))
	}
	for i, c := range r.Cycles {
		if c.FailoverMS == nil || c.DetectMS == nil || c.ElectMS == nil || c.ErrorWindowMS == nil || c.Errors == nil {
			t.Fatalf("cycle %d lacks a required field: %s", i+1, b)
		}
		if *c.FailoverMS < 0 || *c.DetectMS < 0 || *c.ElectMS < 0 {
			t.Errorf("cycle %d: unmeasured step (failover %v, detect %v, elect %v)", i+1, *c.FailoverMS, *c.DetectMS, *c.ElectMS)
		}
	}
	if r.LostRows == nil || r.DuplicateRows == nil || *r.LostRows != 0 || *r.DuplicateRows != 0 {
		t.Errorf("lost/duplicate rows: got %v/%v, want 0/0", r.LostRows, r.DuplicateRows)
	}
	if r.AckedRows == 0 || len(r.StoredRows) != 3 {
		t.Errorf("acked %d, stored %v: want rows on 3 nodes", r.AckedRows, r.StoredRows)
	}
	for n, s := range r.StoredRows {
		if s != r.AckedRows {
			t.Errorf("%s stores %d rows, want the %d acked", n, s, r.AckedRows)
		}
	}
}
