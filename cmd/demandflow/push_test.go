package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/demandflow/demandflow/client"
	"github.com/demandflow/demandflow/internal/sample"
)

// pushNodeAddrs is a node's addrs.json.
type pushNodeAddrs struct {
	HTTP        string `json:"http"`
	HTTP3       string `json:"http3"`
	TLS         bool   `json:"tls"`
	Fingerprint string `json:"fingerprint"`
}

func readAddrs(t *testing.T, dir string) pushNodeAddrs {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "addrs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var a pushNodeAddrs
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// startNodeAt starts a node on a fixed HTTP address (to restart a killed
// node where its clients expect it).
func startNodeAt(t *testing.T, dir, httpAddr string) *exec.Cmd {
	t.Helper()
	_ = os.Remove(filepath.Join(dir, "addrs.json"))
	logs := &bytes.Buffer{}
	cmd := exec.Command(binPath, "node", "--data-dir", dir, "--http-addr", httpAddr, "--node-name", "e2e", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	c := testClient(t, "http://"+httpAddr)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(dir, "addrs.json")); err == nil {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			_, err := c.Datasets(ctx)
			cancel()
			if err == nil {
				return cmd
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("node did not come up on %s; logs:\n%s", httpAddr, logs)
	return nil
}

func testClient(t *testing.T, addrs ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Addrs: addrs, MaxRetries: -1, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runCLI runs the binary and returns its stdout, stderr and exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(t.Context(), binPath, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	}
	t.Fatalf("run %v: %v", args, err)
	return "", "", -1
}

func createSample(t *testing.T, c *client.Client, name string) {
	t.Helper()
	if _, err := c.CreateDataset(t.Context(), sample.Schema(name)); err != nil {
		t.Fatal(err)
	}
}

// storedRows reads every observation of a dataset as
// "product|market|period" -> "qty|price|object_id".
func storedRows(t *testing.T, c *client.Client, dataset string) map[string]string {
	t.Helper()
	out := map[string]string{}
	cursor := ""
	for {
		page, err := c.Series(t.Context(), dataset, client.SeriesQuery{Limit: 1000, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Series {
			obs, err := c.Observations(t.Context(), dataset, s.ID, client.ObservationsQuery{})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range obs.Observations {
				price := ""
				if p := o.Covariates["price"]; p != nil {
					price = strconv.FormatFloat(*p, 'f', 2, 64)
				}
				out[s.Dimensions["product"]+"|"+s.Dimensions["market"]+"|"+o.Period] =
					strconv.FormatFloat(o.Value, 'f', -1, 64) + "|" + price + "|" + o.ObjectID
			}
		}
		if page.NextCursor == "" {
			return out
		}
		cursor = page.NextCursor
	}
}

func wantRows(rows [][]string, bad []int) map[string]string {
	isBad := map[int]bool{}
	for _, b := range bad {
		isBad[b] = true
	}
	out := map[string]string{}
	for i, r := range rows {
		if !isBad[i] {
			out[r[1]+"|"+r[2]+"|"+r[0]] = r[3] + "|" + r[4] + "|" + r[5]
		}
	}
	return out
}

func writeSample(t *testing.T, path string, format client.Format, rows [][]string) {
	t.Helper()
	var buf bytes.Buffer
	switch format {
	case client.FormatCSV:
		_ = sample.WriteCSV(&buf, sample.Header, rows)
	case client.FormatNDJSON:
		_ = sample.WriteNDJSON(&buf, sample.Header, rows)
	case client.FormatJSON:
		var nd bytes.Buffer
		_ = sample.WriteNDJSON(&nd, sample.Header, rows)
		buf.WriteString("[")
		for i, l := range strings.Split(strings.TrimSpace(nd.String()), "\n") {
			if i > 0 {
				buf.WriteString(",\n")
			}
			buf.WriteString(l)
		}
		buf.WriteString("]\n")
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPushRoundTrip pushes a file over each protocol and checks the stored
// rows equal the pushed rows.
func TestPushRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes; skipped with -short")
	}
	dir := t.TempDir()
	p := startProc(t, dir)
	a := readAddrs(t, dir)
	c := testClient(t, p.url)
	rows, _ := (sample.Config{Products: 15, Markets: 4, Months: 10, BadRows: -1}).Rows()
	for _, tc := range []struct {
		proto    string
		format   client.Format
		compress string
	}{{"h1", client.FormatCSV, "none"}, {"h2", client.FormatNDJSON, "none"}, {"h3", client.FormatJSON, "none"}, {"h3", client.FormatCSV, "zstd"}, {"h1", client.FormatNDJSON, "gzip"},
		{"h3", client.FormatNDJSON, ""}} { // "": the default, zstd
		t.Run(tc.proto+"/"+tc.compress, func(t *testing.T) {
			addr := p.url
			args := []string{}
			if tc.proto == "h3" {
				if !a.TLS || a.HTTP3 == "" || a.Fingerprint == "" {
					t.Skip("node serves no HTTP/3 (addrs.json has no http3/fingerprint)")
				}
				addr = "https://" + a.HTTP3
				args = append(args, "--pin", a.Fingerprint)
			}
			name := "rt_" + tc.proto + "_" + tc.compress
			args = append(args, "push", "--addr", addr, "--proto", tc.proto, "--dataset", name, "--batch", "70", "--concurrency", "3")
			if tc.compress != "" {
				args = append(args, "--compress", tc.compress)
			}
			createSample(t, c, name)
			file := filepath.Join(t.TempDir(), "in."+string(tc.format))
			writeSample(t, file, tc.format, rows)
			out, errOut, code := runCLI(t, append(args, file)...)
			if code != 0 {
				t.Fatalf("push: exit %d\n%s\n%s", code, out, errOut)
			}
			if !strings.Contains(out, fmt.Sprintf("rows accepted: %d, rejected: 0, not acked: 0", len(rows))) {
				t.Errorf("summary:\n%s", out)
			}
			got, want := storedRows(t, c, name), wantRows(rows, nil)
			if len(got) != len(want) {
				t.Fatalf("stored %d rows, want %d", len(got), len(want))
			}
			for k, v := range want {
				if got[k] != v {
					t.Fatalf("row %s: stored %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// TestPushRejectsAndExitCodes checks --rejects and every exit code.
func TestPushRejectsAndExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes; skipped with -short")
	}
	dir := t.TempDir()
	p := startProc(t, dir)
	c := testClient(t, p.url)
	createSample(t, c, "rej")
	tmp := t.TempDir()

	rows, bad := (sample.Config{Products: 20, Markets: 3, Months: 10, BadRows: 12}).Rows()
	file := filepath.Join(tmp, "bad.csv")
	writeSample(t, file, client.FormatCSV, rows)
	rejects := filepath.Join(tmp, "rejects.ndjson")
	out, errOut, code := runCLI(t, "push", "--addr", p.url, "--dataset", "rej", "--batch", "50", "--rejects", rejects, file)
	if code != 0 {
		t.Fatalf("push with bad rows: exit %d, want 0 (every batch acked)\n%s\n%s", code, out, errOut)
	}
	f, err := os.Open(rejects)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gotRows := map[int64]client.Reject{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r client.Reject
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("rejects line %q: %v", sc.Text(), err)
		}
		gotRows[r.Row] = r
	}
	if len(gotRows) != len(bad) {
		t.Fatalf("got %d rejects, want %d", len(gotRows), len(bad))
	}
	for _, b := range bad {
		r, ok := gotRows[int64(b+1)]
		if !ok || r.Reason == "" || r.Record != strings.Join(rows[b], ",") {
			t.Errorf("reject for input row %d: got %+v, want reason and record %q", b+1, r, strings.Join(rows[b], ","))
		}
	}
	if d, err := c.Dataset(t.Context(), "rej"); err != nil || d.RowsAccepted != int64(len(rows)-len(bad)) {
		t.Errorf("dataset after push: %+v, %v; want %d rows accepted", d, err, len(rows)-len(bad))
	}

	garbled := filepath.Join(tmp, "garbled.ndjson")
	var nd bytes.Buffer
	_ = sample.WriteNDJSON(&nd, sample.Header, rows[:100])
	nd.WriteString("{\"period\": oops\n")
	_ = os.WriteFile(garbled, nd.Bytes(), 0o644)
	unterminated := filepath.Join(tmp, "open.json")
	_ = os.WriteFile(unterminated, []byte(`[{"period":"2024-01","product":"P1","market":"UK","qty":1},`), 0o644)

	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"unknown dataset", []string{"push", "--addr", p.url, "--dataset", "nope", file}, 1},
		{"no format", []string{"push", "--addr", p.url, "--dataset", "rej", "-"}, 1},
		{"bad compress", []string{"push", "--addr", p.url, "--dataset", "rej", "--compress", "lz4", file}, 1},
		{"missing file", []string{"push", "--addr", p.url, "--dataset", "rej", filepath.Join(tmp, "none.csv")}, 1},
		{"no node", []string{"push", "--addr", "http://127.0.0.1:1", "--retries", "1", "--dataset", "rej", file}, 1},
		{"malformed input", []string{"push", "--addr", p.url, "--dataset", "rej", unterminated}, 2},
		{"batch refused", []string{"push", "--addr", p.url, "--dataset", "rej", "--batch", "40", garbled}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tc.args...)
			if code != tc.want {
				t.Errorf("exit %d, want %d\n%s\n%s", code, tc.want, out, errOut)
			}
		})
	}
}

// TestPushSurvivesRestart SIGKILLs the node in the middle of a push and
// restarts it on the same address: push retries with the same keys, and
// every row is stored exactly once.
func TestPushSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes; skipped with -short")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	node := startNodeAt(t, dir, addr)
	c := testClient(t, "http://"+addr)
	createSample(t, c, "crash")

	rows, _ := (sample.Config{Products: 200, Markets: 12, Months: 36, BadRows: -1}).Rows() // 86,400 rows
	file := filepath.Join(t.TempDir(), "big.ndjson")
	writeSample(t, file, client.FormatNDJSON, rows)

	var out, errOut bytes.Buffer
	push := exec.CommandContext(t.Context(), binPath, "push", "--addr", "http://"+addr, "--dataset", "crash",
		"--batch", "1000", "--concurrency", "4", "--retries", "100", "--timeout", "5s", "--progress", "none", file)
	push.Stdout, push.Stderr = &out, &errOut
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill once part of the file is stored.
	deadline := time.Now().Add(60 * time.Second)
	for {
		d, err := c.Dataset(t.Context(), "crash")
		if err == nil && d.RowsAccepted >= 10000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("push made no progress: %v\n%s", err, errOut.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = node.Process.Signal(syscall.SIGKILL)
	_ = node.Wait()
	startNodeAt(t, dir, addr)

	if err := push.Wait(); err != nil {
		t.Fatalf("push: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	// Retries prove the kill hit the push mid-stream.
	if strings.Contains(out.String(), "retries: 0\n") || !strings.Contains(out.String(), "not acked: 0") {
		t.Errorf("summary: want retries and every batch acked:\n%s", out.String())
	}
	d, err := c.Dataset(t.Context(), "crash")
	if err != nil {
		t.Fatal(err)
	}
	if d.RowsAccepted != int64(len(rows)) {
		t.Errorf("rows_accepted %d after kill+restart, want %d (nothing lost, nothing doubled)\n%s", d.RowsAccepted, len(rows), out.String())
	}
	if got := storedRows(t, c, "crash"); len(got) != len(rows) {
		t.Errorf("stored %d observations, want %d", len(got), len(rows))
	}
	t.Logf("push summary:\n%s", out.String())
}

// TestPinning checks that push accepts the node's self-signed certificate
// with the right --pin and refuses it with a wrong one or none.
func TestPinning(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes; skipped with -short")
	}
	dir := t.TempDir()
	p := startProc(t, dir)
	a := readAddrs(t, dir)
	if !a.TLS || a.Fingerprint == "" {
		t.Skip("node serves no TLS (addrs.json has no fingerprint)")
	}
	c := testClient(t, p.url)
	createSample(t, c, "pin")
	rows, _ := (sample.Config{Products: 5, Markets: 2, Months: 3, BadRows: -1}).Rows()
	file := filepath.Join(t.TempDir(), "in.csv")
	writeSample(t, file, client.FormatCSV, rows)
	wrong := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name  string
		args  []string
		want  int
		proto string
	}{
		{"h1 pinned", []string{"--addr", "https://" + a.HTTP, "--pin", a.Fingerprint}, 0, "h1"},
		{"h2 pinned", []string{"--addr", "https://" + a.HTTP, "--pin", a.Fingerprint}, 0, "h2"},
		{"h3 pinned", []string{"--addr", "https://" + a.HTTP3, "--pin", a.Fingerprint}, 0, "h3"},
		{"h1 wrong pin", []string{"--addr", "https://" + a.HTTP, "--pin", wrong}, 1, "h1"},
		{"h3 wrong pin", []string{"--addr", "https://" + a.HTTP3, "--pin", wrong}, 1, "h3"},
		{"h1 unpinned self-signed", []string{"--addr", "https://" + a.HTTP}, 1, "h1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.proto == "h3" && a.HTTP3 == "" {
				t.Skip("node serves no HTTP/3")
			}
			args := append([]string{"push", "--proto", tc.proto, "--dataset", "pin", "--retries", "1", "--timeout", "3s"}, tc.args...)
			out, errOut, code := runCLI(t, append(args, file)...)
			if code != tc.want {
				t.Errorf("exit %d, want %d\n%s\n%s", code, tc.want, out, errOut)
			}
			if tc.want == 1 && !strings.Contains(errOut, "certificate") {
				t.Errorf("refusal does not mention the certificate:\n%s", errOut)
			}
		})
	}
}
