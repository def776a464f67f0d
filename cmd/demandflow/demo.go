package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/demandflow/demandflow/internal/sample"
	"github.com/demandflow/demandflow/node"
)

func newDemoCmd() *cobra.Command {
	var (
		configPath string
		dataset    string
		chunk      int
		exitAfter  bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a single node with embedded defaults and load the bundled sample",
		Long: `Run a single node (data under ./data, HTTP on 127.0.0.1:7070 unless
configured), create the sample dataset, load the deterministic sample of
synthetic export demand (500 products x 12 markets x 60 months, with trend,
seasonality, noise, intermittent series and a few deliberately bad rows),
print a summary and keep serving until Ctrl-C.

Running it again on the same data directory stores nothing twice: every
sample chunk is sent with a fixed Idempotency-Key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadNodeConfig(cmd.Flags(), configPath, os.Environ())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			return runNode(ctx, cfg, func(n *node.Node) error {
				if err := loadSample(ctx, out, n.URL(), dataset, chunk); err != nil {
					return err
				}
				if exitAfter {
					stop()
					return nil
				}
				fmt.Fprintf(out, "\nServing on %s until Ctrl-C.\n", n.URL())
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&dataset, "dataset", "exports", "name of the sample dataset")
	cmd.Flags().IntVar(&chunk, "chunk", 20000, "rows per ingest request")
	cmd.Flags().BoolVar(&exitAfter, "exit", false, "stop after loading instead of serving")
	addNodeFlags(cmd, &configPath)
	return cmd
}

// demoIngest is the part of the ingest response the demo reads.
type demoIngest struct {
	Accepted int `json:"accepted"`
	Rejected int `json:"rejected"`
	Errors   []struct {
		Row    int    `json:"row"`
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

func loadSample(ctx context.Context, out io.Writer, base, dataset string, chunk int) error {
	if chunk < 1 {
		return fmt.Errorf("--chunk: %d, want >= 1", chunk)
	}
	hc := &http.Client{Timeout: 2 * time.Minute}
	schema := sample.Schema(dataset)
	body, _ := json.Marshal(schema)
	status, resp, err := doJSON(ctx, hc, "POST", base+"/v1/datasets", "application/json", nil, body)
	if err != nil {
		return err
	}
	switch status {
	case http.StatusCreated:
		fmt.Fprintf(out, "Created dataset %q (monthly; dimensions product, market; measure qty; covariate price).\n", dataset)
	case http.StatusConflict:
		fmt.Fprintf(out, "Dataset %q exists; re-sending the sample is safe (idempotency keys).\n", dataset)
	default:
		return fmt.Errorf("create dataset: HTTP %d: %s", status, resp)
	}

	cfg := sample.DefaultConfig()
	rows, _ := cfg.Rows()
	fmt.Fprintf(out, "Loading %d sample rows in chunks of %d (CSV over HTTP)...\n", len(rows), chunk)
	start := time.Now()
	var accepted, rejected int
	var firstErrors []string
	for i := 0; i < len(rows); i += chunk {
		end := min(i+chunk, len(rows))
		var buf bytes.Buffer
		if err := sample.WriteCSV(&buf, sample.Header, rows[i:end]); err != nil {
			return err
		}
		key := fmt.Sprintf("demo-sample-%d-%d-%d", cfg.Seed, chunk, i/chunk)
		status, resp, err := doJSON(ctx, hc, "POST", base+"/v1/datasets/"+dataset+"/records", "text/csv",
			map[string]string{"Idempotency-Key": key}, buf.Bytes())
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("ingest chunk %d: HTTP %d: %s", i/chunk, status, resp)
		}
		var r demoIngest
		if err := json.Unmarshal(resp, &r); err != nil {
			return fmt.Errorf("ingest chunk %d: %w", i/chunk, err)
		}
		accepted += r.Accepted
		rejected += r.Rejected
		for _, e := range r.Errors {
			if len(firstErrors) < 5 {
				firstErrors = append(firstErrors, fmt.Sprintf("row %d of chunk %d: %s: %s", e.Row, i/chunk, e.Field, e.Reason))
			}
		}
	}
	elapsed := time.Since(start)

	status, resp, err = doJSON(ctx, hc, "GET", base+"/v1/datasets/"+dataset, "", nil, nil)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("read dataset: HTTP %d: %s %v", status, resp, err)
	}
	var info struct {
		Dataset struct {
			Series       int   `json:"series"`
			RowsAccepted int64 `json:"rows_accepted"`
		} `json:"dataset"`
	}
	_ = json.Unmarshal(resp, &info)

	fmt.Fprintf(out, "\nSummary\n")
	fmt.Fprintf(out, "  rows accepted:  %d\n", accepted)
	fmt.Fprintf(out, "  rows rejected:  %d (deliberately bad sample rows)\n", rejected)
	for _, e := range firstErrors {
		fmt.Fprintf(out, "    %s\n", e)
	}
	fmt.Fprintf(out, "  series stored:  %d\n", info.Dataset.Series)
	fmt.Fprintf(out, "  load time:      %s (%.0f rows/s)\n", elapsed.Round(time.Millisecond), float64(len(rows))/elapsed.Seconds())
	sid := "<series_id>"
	if status, resp, err := doJSON(ctx, hc, "GET", base+"/v1/datasets/"+dataset+"/series?product=P0001&market=EU-DE", "", nil, nil); err == nil && status == http.StatusOK {
		var page struct {
			Series []struct {
				ID string `json:"series_id"`
			} `json:"series"`
		}
		if json.Unmarshal(resp, &page) == nil && len(page.Series) > 0 {
			sid = page.Series[0].ID
		}
	}
	fmt.Fprintf(out, "\nWhere to look\n")
	fmt.Fprintf(out, "  curl -s %s/v1/datasets/%s\n", base, dataset)
	fmt.Fprintf(out, "  curl -s '%s/v1/datasets/%s/series?product=P0001&limit=5'\n", base, dataset)
	fmt.Fprintf(out, "  curl -s %s/v1/datasets/%s/series/%s/observations -H 'Accept: text/csv'\n", base, dataset, sid)
	fmt.Fprintf(out, "  curl -s '%s/v1/datasets/%s/forecasts?product=P0001&market=EU-DE'   (forecasts appear within a minute)\n", base, dataset)
	fmt.Fprintf(out, "  curl -s '%s/v1/tracking/transactions?dataset=%s&limit=5'\n", base, dataset)
	fmt.Fprintf(out, "  curl -s %s/metrics | grep demandflow_ingest\n", base)
	return nil
}

func doJSON(ctx context.Context, hc *http.Client, method, url, ct string, hdr map[string]string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}
