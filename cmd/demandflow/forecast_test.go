package main

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestForecastFile runs `demandflow forecast file` on a small long CSV and
// checks the output shape, and that bad input fails with a message naming
// the line.
func TestForecastFile(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	var b strings.Builder
	b.WriteString("id,t,y\n")
	for s := 0; s < 3; s++ {
		for i := 48; i >= 1; i-- { // rows in any order
			y := 100 + 10*math.Sin(2*math.Pi*float64(i)/12) + float64(i) + float64(10*s)
			fmt.Fprintf(&b, "s%d,%d,%.3f\n", s, i, y)
		}
	}
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.csv")
	cmd := exec.Command(binPath, "forecast", "file", "--input", in, "--season-length", "12", "--horizon", "6",
		"--model", "ets", "--levels", "80,95", "--output", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("forecast file: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "series/s") {
		t.Errorf("summary on stderr: got %q, want a series/s figure", stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := "id,step,mean,lo_80,hi_80,lo_95,hi_95,model"
	if got := strings.Join(recs[0], ","); got != wantHeader {
		t.Fatalf("header: got %q, want %q", got, wantHeader)
	}
	if len(recs) != 1+3*6 {
		t.Fatalf("rows: got %d, want %d (3 series x 6 steps)", len(recs)-1, 3*6)
	}
	for _, r := range recs[1:] {
		var mean, lo80, hi80, lo95, hi95 float64
		fmt.Sscan(r[2], &mean)
		fmt.Sscan(r[3], &lo80)
		fmt.Sscan(r[4], &hi80)
		fmt.Sscan(r[5], &lo95)
		fmt.Sscan(r[6], &hi95)
		if !(lo95 <= lo80 && lo80 <= mean && mean <= hi80 && hi80 <= hi95) || mean < 50 || mean > 250 {
			t.Errorf("row %v: intervals not nested around a plausible mean", r)
		}
	}

	bad := filepath.Join(dir, "bad.csv")
	_ = os.WriteFile(bad, []byte("id,t,y\na,1,3\na,2,x\n"), 0o644)
	cmd = exec.Command(binPath, "forecast", "file", "--input", bad, "--horizon", "2")
	msg, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("bad input: got err %v, want a non-zero exit", err)
	}
	if !strings.Contains(string(msg), "line 3") {
		t.Errorf("bad input message %q does not name line 3", msg)
	}
	if err := exec.Command(binPath, "forecast", "file", "--input", in).Run(); err == nil {
		t.Error("missing --horizon: got exit 0")
	}
}
