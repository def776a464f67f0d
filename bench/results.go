package bench

import (
	"fmt"
	"os"
	"strings"
)

// resultsHeading starts this harness's section of RESULTS.md; the file is
// shared with other benchmark owners, so AppendResult only ever touches
// the table under this heading.
const resultsHeading = "## Ingest: `demandflow bench ingest`"

const resultsTable = "| date (UTC) | proto | format | batch | conc | rate | rows acked | rows/s | MB/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | retries | command |\n" +
	"| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"

// AppendResult adds one row for r to the ingest table of the markdown file
// at path (creating the file, the section or the table as needed) and
// keeps everything else in the file as it was. command is shown in the
// row.
func AppendResult(path string, r *Report, command string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	rate := "max"
	if r.Config.Rate > 0 {
		rate = fmt.Sprintf("%.0f", r.Config.Rate)
		if p := r.Config.Labels["rate_of_max"]; p != "" {
			rate = p + " of max (" + rate + ")"
		}
	}
	l := r.LatencyMs
	// The whole run's rows/s; after a warm-up, the steady figure too.
	perS := fmt.Sprintf("%.0f", r.RowsPerS)
	if st := r.Steady; st != nil {
		perS += fmt.Sprintf(" (%.0f after %gs)", st.RowsPerS, st.WarmupS)
	}
	row := fmt.Sprintf("| %s | %s | %s | %d | %d | %s | %d | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %d | %d | `%s` |\n",
		r.Started.Format("2006-01-02 15:04"), r.Config.Labels["proto"], r.Config.Format, r.Config.Batch, r.Config.Concurrency,
		rate, r.RowsAcked, perS, r.MBPerS, l.P50, l.P90, l.P99, l.P999, l.Max, r.Errors, r.Retries, command)

	text := string(old)
	i := strings.Index(text, resultsHeading)
	if i < 0 {
		if text != "" && !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		if text != "" {
			text += "\n"
		}
		text += resultsHeading + "\n\nAppended by `demandflow bench ingest --results` (`make bench`); the JSON reports are in bench/out/.\n\n" + resultsTable + row
		return os.WriteFile(path, []byte(text), 0o644)
	}
	// Insert after the last table row of the section.
	lines := strings.SplitAfter(text[i:], "\n")
	pos, inTable := i, false
	at := -1
	for k, ln := range lines {
		if k > 0 && strings.HasPrefix(ln, "## ") {
			break
		}
		if strings.HasPrefix(ln, "| date (UTC) |") {
			inTable = true
		}
		pos += len(ln)
		if inTable && strings.HasPrefix(ln, "|") {
			at = pos
		} else if inTable {
			break
		}
	}
	if at < 0 { // section without a table
		at = i + len(lines[0])
		row = "\n" + resultsTable + row
	}
	if at > 0 && text[at-1] != '\n' {
		row = "\n" + row
	}
	return os.WriteFile(path, []byte(text[:at]+row+text[at:]), 0o644)
}
