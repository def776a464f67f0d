package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/demandflow/demandflow/client"
	"github.com/demandflow/demandflow/internal/zstdbody"
)

// Exit codes of push (also in its --help).
const (
	pushExitOK       = 0 // every batch acked (rows may have been rejected)
	pushExitSetup    = 1 // usage or setup error; nothing or not everything was read
	pushExitInput    = 2 // the input is malformed; rows after the error were not sent
	pushExitNotAcked = 3 // some batches were not acked after retries
)

type pushOpts struct {
	tf          transportFlags
	dataset     string
	format      string
	batch       int
	concurrency int
	maxBytes    int
	compress    string
	rejects     string
	keyPrefix   string
	progress    string
	interval    time.Duration
}

func newPushCmd() *cobra.Command {
	o := &pushOpts{}
	cmd := &cobra.Command{
		Use:   "push --dataset NAME [flags] FILE|-",
		Short: "Stream a file or stdin of records into a dataset, in acked batches",
		Long: `Push streams a file (or stdin, "-") of any size into a dataset with constant
memory: the input is cut into batches of --batch records on record
boundaries and sent with at most --concurrency requests in flight. Every
batch carries an Idempotency-Key ("<key-prefix>-<batch number>") that is
reused on every retry, so a batch retried after a timeout, a 429/503 or a
leader change is stored once. Pushing the same file again with the same
--key-prefix and --batch stores nothing twice.

Formats: csv (header re-sent with every batch), ndjson, json (an array of
records), xml (children of the root element), arrow (Arrow IPC stream).
Without --format it is taken from the file extension (.csv, .ndjson,
.jsonl, .json, .xml, .arrow, .arrows; a further .gz is decompressed).

Request bodies are compressed with zstd unless --compress says
otherwise: demand rows shrink four- to fourteenfold, and over HTTP/3,
whose cost is per packet, compressing costs less CPU than the packets it
saves. Text formats use zstd's fastest level; Arrow streams its default
level, which halves their bytes again.

On a terminal a progress bar shows rows, MB/s and rejected rows; otherwise
a plain line is printed every --progress-interval. A summary goes to
stdout at the end. Rejected rows go to --rejects as NDJSON, one object
per row: {"row": N, "object_id", "field", "reason", "record"}, where row
counts records from 1 over the whole input (blank lines and the CSV header
not counted).

Exit codes:
  0  every batch was acked (rows may still have been rejected: see the
     summary and --rejects)
  1  usage or setup error (bad flags, unreadable file, unknown dataset,
     no node reachable at the start)
  2  the input is malformed (for example an unterminated JSON array);
     batches before the error were sent, nothing after it
  3  some batches were not acked (refused with a 4xx, or still failing
     after --retries); their rows are not stored`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPush(cmd.Context(), o, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.tf.register(cmd, "addr")
	fs := cmd.Flags()
	fs.StringVar(&o.dataset, "dataset", "", "dataset to push into (required)")
	fs.StringVar(&o.format, "format", "", "csv, ndjson, json, xml or arrow (default: from the file extension)")
	fs.IntVar(&o.batch, "batch", 10000, "records per request")
	fs.IntVar(&o.concurrency, "concurrency", 4, "requests in flight")
	fs.IntVar(&o.maxBytes, "max-batch-bytes", 16<<20, "cut a batch early at this body size (stay under the node's max_body_bytes)")
	fs.StringVar(&o.compress, "compress", "zstd", "Content-Encoding of the requests: zstd, gzip or none (zstd: 4-14x fewer bytes on the network, and less CPU on both ends over HTTP/3)")
	fs.StringVar(&o.rejects, "rejects", "", "write rejected rows with reasons to FILE (NDJSON)")
	fs.StringVar(&o.keyPrefix, "key-prefix", "", "Idempotency-Key prefix (default: random); reuse it to resume a push without duplicates")
	fs.StringVar(&o.progress, "progress", "auto", "auto (bar on a terminal, lines otherwise), bar, plain or none")
	fs.DurationVar(&o.interval, "progress-interval", 2*time.Second, "interval of the plain progress lines")
	_ = cmd.MarkFlagRequired("dataset")
	return cmd
}

// countingReader counts bytes read.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

func formatFromName(name string) (client.Format, bool) {
	name = strings.TrimSuffix(strings.ToLower(name), ".gz")
	switch filepath.Ext(name) {
	case ".csv":
		return client.FormatCSV, true
	case ".ndjson", ".jsonl":
		return client.FormatNDJSON, true
	case ".json":
		return client.FormatJSON, true
	case ".xml":
		return client.FormatXML, true
	case ".arrow", ".arrows":
		return client.FormatArrow, true
	}
	return "", false
}

func runPush(ctx context.Context, o *pushOpts, path string, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	setup := func(format string, a ...any) error {
		return exitError{code: pushExitSetup, msg: "push: " + fmt.Sprintf(format, a...)}
	}

	var format client.Format
	if o.format != "" {
		f, err := client.ParseFormat(o.format)
		if err != nil {
			return setup("%v", err)
		}
		format = f
	} else if f, ok := formatFromName(path); ok && path != "-" {
		format = f
	} else {
		return setup("cannot tell the format of %s: give --format csv|ndjson|json|xml|arrow", path)
	}
	if o.batch < 1 || o.concurrency < 1 {
		return setup("--batch and --concurrency must be at least 1")
	}
	if o.compress != "none" && o.compress != "zstd" && o.compress != "gzip" {
		return setup("--compress %q: want none, zstd or gzip", o.compress)
	}

	var in io.Reader = os.Stdin
	var size int64 = -1
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return setup("%v", err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
		in = f
	}
	counted := &countingReader{r: in}
	var src io.Reader = counted
	if strings.HasSuffix(strings.ToLower(path), ".gz") {
		zr, err := gzip.NewReader(bufio.NewReader(counted))
		if err != nil {
			return setup("%s: %v", path, err)
		}
		defer zr.Close()
		src = zr
	}

	tr, err := o.tf.build(o.concurrency)
	if err != nil {
		return setup("%v", err)
	}
	defer tr.close()
	c, err := client.New(client.Config{Addrs: tr.addrs, Transport: tr.rt, Timeout: o.tf.timeout,
		MaxRetries: retriesFlag(o.tf.retries), Token: o.tf.token, UserAgent: "demandflow-push/" + version})
	if err != nil {
		return setup("%v", err)
	}
	// Fail fast, with exit code 1, on an unknown dataset or no node.
	if _, err := c.Dataset(ctx, o.dataset); err != nil {
		return setup("dataset %s: %v", o.dataset, err)
	}

	var rejW *bufio.Writer
	var rejEnc *json.Encoder
	if o.rejects != "" {
		f, err := os.Create(o.rejects)
		if err != nil {
			return setup("--rejects: %v", err)
		}
		defer f.Close()
		rejW = bufio.NewWriter(f)
		rejEnc = json.NewEncoder(rejW)
	}

	prog := newPushProgress(o, size, counted, stderr)
	var rejErr error
	var encode func([]byte) []byte
	if o.compress == "zstd" {
		// (here, not in client, which uses the standard library only)
		encode = func(b []byte) []byte { return zstdbody.Encode(string(format), b) }
	}
	p, err := client.NewPusher(c, o.dataset, format, client.PushConfig{
		Batch: o.batch, Concurrency: o.concurrency, MaxBatchBytes: o.maxBytes, KeyPrefix: o.keyPrefix,
		ContentEncoding: strings.TrimPrefix(o.compress, "none"), Encode: encode,
		OnBatch: func(b client.BatchOutcome) {
			prog.batch(b)
			if b.Err != nil {
				prog.println(fmt.Sprintf("push: not acked: %v", b.Err))
			}
			if rejEnc != nil && rejErr == nil {
				for _, r := range b.Rejects {
					if err := rejEnc.Encode(r); err != nil {
						rejErr = err
						break
					}
				}
			}
		},
	})
	if err != nil {
		return setup("%v", err)
	}
	prog.start()
	res, pushErr := p.Push(ctx, src)
	prog.finish()
	if rejW != nil {
		if err := rejW.Flush(); err != nil && rejErr == nil {
			rejErr = err
		}
	}

	el := res.Duration.Seconds()
	fmt.Fprintf(stdout, "pushed %s: %d rows in %d batches, %.1f MB in %.2fs (%.0f rows/s, %.1f MB/s)\n",
		o.dataset, res.Rows, res.Batches, float64(counted.n.Load())/1e6, el, float64(res.Rows)/max(el, 1e-9),
		float64(counted.n.Load())/1e6/max(el, 1e-9))
	fmt.Fprintf(stdout, "acked batches: %d of %d (%d replayed), retries: %d\n", res.Acked, res.Batches, res.Replayed, res.Retries)
	fmt.Fprintf(stdout, "rows accepted: %d, rejected: %d, not acked: %d\n", res.Accepted, res.Rejected, res.FailedRows)
	if res.Rejected > 0 {
		if o.rejects != "" {
			fmt.Fprintf(stdout, "rejected rows written to %s\n", o.rejects)
		} else {
			fmt.Fprintln(stdout, "rejected rows not saved; use --rejects FILE to see them")
		}
	}
	if rejErr != nil {
		return exitError{code: pushExitSetup, msg: fmt.Sprintf("push: writing --rejects: %v", rejErr)}
	}
	switch {
	case pushErr != nil && ctx.Err() != nil:
		return exitError{code: pushExitNotAcked, msg: fmt.Sprintf("push: interrupted: %d rows not acked", res.Rows-res.Accepted-res.Rejected)}
	case pushErr != nil:
		return exitError{code: pushExitInput, msg: fmt.Sprintf("push: input: %v (rows after record %d were not sent)", pushErr, res.Rows)}
	case !res.OK():
		return exitError{code: pushExitNotAcked, msg: fmt.Sprintf("push: %d batches (%d rows) not acked; first error: %v",
			res.Failed+res.Unsent, res.FailedRows, res.FirstError)}
	}
	return nil
}

// retriesFlag maps the --retries flag to client.Config.MaxRetries (where 0
// means the default).
func retriesFlag(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

// pushProgress shows progress as a bar (terminal) or plain lines.
type pushProgress struct {
	mode     string
	interval time.Duration
	w        io.Writer
	in       *countingReader
	size     int64
	t0       time.Time

	mu                       sync.Mutex
	rows, rejected, notAcked int64
	bar                      *progressbar.ProgressBar
	stopTick                 chan struct{}
	wg                       sync.WaitGroup
}

func newPushProgress(o *pushOpts, size int64, in *countingReader, w io.Writer) *pushProgress {
	mode := o.progress
	if mode == "auto" {
		mode = "plain"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			mode = "bar"
		}
	}
	return &pushProgress{mode: mode, interval: o.interval, w: w, in: in, size: size}
}

func (p *pushProgress) start() {
	p.t0 = time.Now()
	switch p.mode {
	case "bar":
		p.bar = progressbar.NewOptions64(p.size,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionSetDescription("push"),
			progressbar.OptionClearOnFinish(),
		)
	case "plain":
	default:
		return
	}
	p.stopTick = make(chan struct{})
	every := p.interval
	if p.bar != nil {
		every = 200 * time.Millisecond
	}
	p.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stopTick:
				return
			case <-t.C:
				p.tick()
			}
		}
	})
}

func (p *pushProgress) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.in.n.Load()
	el := time.Since(p.t0).Seconds()
	mbs := float64(n) / 1e6 / max(el, 1e-9)
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("%d rows acked, %.1f MB/s, %d rejected", p.rows, mbs, p.rejected))
		_ = p.bar.Set64(n)
		return
	}
	pct := ""
	if p.size > 0 {
		pct = fmt.Sprintf(" (%.0f%%)", 100*float64(n)/float64(p.size))
	}
	fmt.Fprintf(p.w, "push: %.0fs read %.1f MB%s, %d rows acked, %.1f MB/s, %d rejected, %d not acked\n",
		el, float64(n)/1e6, pct, p.rows, mbs, p.rejected, p.notAcked)
}

func (p *pushProgress) batch(b client.BatchOutcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b.Err != nil {
		p.notAcked += int64(b.Rows)
		return
	}
	p.rows += int64(b.Result.Accepted + b.Result.Rejected)
	p.rejected += int64(b.Result.Rejected)
}

// println prints a line without tearing the bar.
func (p *pushProgress) println(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == "none" {
		return
	}
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	fmt.Fprintln(p.w, s)
}

func (p *pushProgress) finish() {
	if p.stopTick == nil {
		return
	}
	close(p.stopTick)
	p.wg.Wait()
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
