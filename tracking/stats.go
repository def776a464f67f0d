package tracking

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Statistics are pre-aggregated per minute while recording: every
// RecordBlock adds the block to four counters, one per dimension (stage,
// dataset, source, node), each keyed (dim, minute, value, stage), through a
// read-modify-write served by the Recorder's overlay and written through to
// the batch. A stats query then reads at most one key per (minute, group,
// stage) and merges them into its buckets: a day of 1-minute buckets by
// stage is 1,440 x 6 keys.
//
// Latency (Finished - Started of non-skipped blocks) is kept as a
// fixed 64-bucket log histogram with bucket bounds at powers of sqrt(2)
// microseconds, so percentiles of any merge of minutes are exact to one
// bucket (about +-20%); the reported value is the middle of the bucket.

// histBuckets is the number of latency histogram buckets.
const histBuckets = 64

// histBound[k] = ceil(sqrt(2^k)) microseconds. Bucket 0 holds < 1 µs,
// bucket i in 1..62 holds [histBound[i-1], histBound[i]), bucket 63 holds
// >= histBound[62] (~36 min). math.Sqrt is correctly rounded (IEEE 754) and
// 2^k is exact, so the table is the same on every platform.
var histBound = func() (b [histBuckets - 1]uint64) {
	for k := range b {
		b[k] = uint64(math.Ceil(math.Sqrt(math.Ldexp(1, k))))
	}
	return b
}()

// histIndex returns the histogram bucket of latency d.
func histIndex(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	us := uint64(d / time.Microsecond)
	return sort.Search(len(histBound), func(k int) bool { return us < histBound[k] })
}

// histValue returns the representative latency of bucket i in milliseconds.
func histValue(i int) float64 {
	switch {
	case i <= 0:
		return 0.0005
	case i >= histBuckets-1:
		return float64(histBound[histBuckets-2]) / 1000
	}
	return float64(histBound[i-1]+histBound[i]) / 2 / 1000
}

// statAgg is one stats counter (one key) or a merge of several.
type statAgg struct {
	blocks, failedBlocks          int64
	in, ok, failed, skipped       int64
	bytes, cpuNanos, latencyNanos int64
	hist                          [histBuckets]uint64
}

// add counts one block record (not the merged block).
func (a *statAgg) add(b *Block) {
	a.blocks++
	a.in += b.RowsIn
	a.bytes += b.Bytes
	a.cpuNanos += int64(b.CPUTime)
	if b.Status == BlockSkipped {
		a.skipped += b.RowsIn
		return
	}
	if b.Status == BlockFailed {
		a.failedBlocks++
	}
	a.ok += b.RowsOut
	if d := b.RowsIn - b.RowsOut; d > 0 {
		a.failed += d
	}
	lat := max(b.Finished.Sub(b.Started), 0)
	a.latencyNanos += int64(lat)
	a.hist[histIndex(lat)]++
}

func (a *statAgg) merge(o *statAgg) {
	a.blocks += o.blocks
	a.failedBlocks += o.failedBlocks
	a.in += o.in
	a.ok += o.ok
	a.failed += o.failed
	a.skipped += o.skipped
	a.bytes += o.bytes
	a.cpuNanos += o.cpuNanos
	a.latencyNanos += o.latencyNanos
	for i, c := range o.hist {
		a.hist[i] += c
	}
}

// percentile returns the q-quantile latency in milliseconds (0 if empty):
// the bucket holding the ceil(q*n)-th smallest sample.
func (a *statAgg) percentile(q float64) float64 {
	var n uint64
	for _, c := range a.hist {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var cum uint64
	for i, c := range a.hist {
		cum += c
		if cum >= rank {
			return histValue(i)
		}
	}
	return histValue(histBuckets - 1)
}

func encodeStat(b []byte, a *statAgg) []byte {
	b = append(b, codecV1)
	for _, v := range [...]int64{a.blocks, a.failedBlocks, a.in, a.ok, a.failed, a.skipped, a.bytes, a.cpuNanos, a.latencyNanos} {
		b = appendVarint(b, v)
	}
	n := 0
	for _, c := range a.hist {
		if c != 0 {
			n++
		}
	}
	b = append(b, byte(n))
	for i, c := range a.hist {
		if c != 0 {
			b = append(b, byte(i))
			b = binary.AppendUvarint(b, c)
		}
	}
	return b
}

// mergeEncodedStat decodes v and adds it to a.
func mergeEncodedStat(a *statAgg, v []byte) error {
	d := dec{b: v}
	d.version()
	for _, p := range [...]*int64{&a.blocks, &a.failedBlocks, &a.in, &a.ok, &a.failed, &a.skipped, &a.bytes, &a.cpuNanos, &a.latencyNanos} {
		*p += d.varint()
	}
	n := int(d.byte())
	for range n {
		i := int(d.byte())
		c := d.uvarint()
		if i >= histBuckets {
			d.fail()
			break
		}
		a.hist[i] += c
	}
	return d.err
}

// addStats adds block b of transaction st to the four per-minute counters.
// A block without times has no minute and is left out of the statistics.
func (rc *Recorder) addStats(st *txState, b *Block) error {
	if b.Finished.IsZero() {
		return nil
	}
	minute := unixMinute(b.Finished)
	dims := [4]struct {
		dim   byte
		value string
	}{
		{dimStage, ""},
		{dimDataset, st.tx.Dataset},
		{dimSource, string(st.tx.Source)},
		{dimNode, b.Node},
	}
	for _, d := range dims {
		key := rc.s.k.statsKey(d.dim, minute, d.value, b.Stage)
		a, ok := rc.stats[string(key)]
		if !ok {
			a = &statAgg{}
			if _, err := get(rc.r, key, func(v []byte) error { return mergeEncodedStat(a, v) }); err != nil {
				return fmt.Errorf("read stats: %w", err)
			}
			rc.stats[string(key)] = a
		}
		a.add(b)
		rc.buf = encodeStat(rc.buf[:0], a)
		if err := rc.w.Set(key, rc.buf, nil); err != nil {
			return err
		}
	}
	return nil
}

// StatsQuery selects statistics. From and To are required; buckets are
// aligned to multiples of Bucket since the Unix epoch (UTC), and every
// minute in [From, To) is counted, From rounded down and To up to a minute.
type StatsQuery struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Bucket is the bucket width, a positive multiple of one minute
	// (1m, 1h, 1d, ...). Default one minute.
	Bucket time.Duration `json:"bucket"`
	// By is the grouping: "stage" (default), "dataset", "source" or "node".
	By string `json:"by"`
}

// maxStatsBuckets bounds the result size of one query.
const maxStatsBuckets = 100_000

// StatsResult is the answer to a stats query. Buckets without data are
// omitted.
type StatsResult struct {
	From          time.Time     `json:"from"`
	To            time.Time     `json:"to"`
	BucketSeconds int64         `json:"bucket_seconds"`
	By            string        `json:"by"`
	Buckets       []StatsBucket `json:"buckets"`
	// Stages summarizes every stage over the whole range, in pipeline
	// order, omitting stages without blocks.
	Stages []StageSummary `json:"stages"`
	// Bottleneck is the stage with the highest share of the total block
	// latency over the range; empty without data.
	Bottleneck Stage `json:"bottleneck,omitempty"`
}

// StatsBucket holds the groups of one time bucket.
type StatsBucket struct {
	Start  time.Time    `json:"start"`
	Groups []StatsGroup `json:"groups"`
}

// StatsGroup is one (group, stage) row of a bucket. Group is the dataset,
// source or node name, or the stage name for By "stage". Rows: In counts
// rows entering the stage, OK rows leaving it, Failed rows lost in it
// (rejected or in a failed block), Skipped rows of skipped blocks (also in
// In).
type StatsGroup struct {
	Group          string  `json:"group"`
	Stage          Stage   `json:"stage"`
	Blocks         int64   `json:"blocks"`
	FailedBlocks   int64   `json:"failed_blocks"`
	In             int64   `json:"in"`
	OK             int64   `json:"ok"`
	Failed         int64   `json:"failed"`
	Skipped        int64   `json:"skipped"`
	P50MS          float64 `json:"p50_ms"`
	P99MS          float64 `json:"p99_ms"`
	LatencySeconds float64 `json:"latency_seconds"`
	Bytes          int64   `json:"bytes"`
	CPUSeconds     float64 `json:"cpu_seconds"`
}

// StageSummary is one stage over the whole range.
type StageSummary struct {
	StatsGroup
	// Share is the stage's fraction of the total latency of all stages.
	Share float64 `json:"share"`
}

func (a *statAgg) group(group string, st Stage) StatsGroup {
	return StatsGroup{
		Group:          group,
		Stage:          st,
		Blocks:         a.blocks,
		FailedBlocks:   a.failedBlocks,
		In:             a.in,
		OK:             a.ok,
		Failed:         a.failed,
		Skipped:        a.skipped,
		P50MS:          a.percentile(0.50),
		P99MS:          a.percentile(0.99),
		LatencySeconds: float64(a.latencyNanos) / 1e9,
		Bytes:          a.bytes,
		CPUSeconds:     float64(a.cpuNanos) / 1e9,
	}
}

var statsDims = map[string]byte{"stage": dimStage, "dataset": dimDataset, "source": dimSource, "node": dimNode}

// Stats answers a statistics query from r (nil: the store's reader).
func (s *Store) Stats(ctx context.Context, r Reader, q StatsQuery) (*StatsResult, error) {
	r, err := s.readerOr(r)
	if err != nil {
		return nil, err
	}
	if q.By == "" {
		q.By = "stage"
	}
	dim, ok := statsDims[q.By]
	if !ok {
		return nil, fmt.Errorf("%w: stats: unknown grouping %q (want stage, dataset, source or node)", ErrInvalid, q.By)
	}
	if q.Bucket == 0 {
		q.Bucket = time.Minute
	}
	if q.Bucket < time.Minute || q.Bucket%time.Minute != 0 {
		return nil, fmt.Errorf("%w: stats: bucket %v is not a positive multiple of one minute", ErrInvalid, q.Bucket)
	}
	if q.From.IsZero() || q.To.IsZero() || !q.From.Before(q.To) {
		return nil, fmt.Errorf("%w: stats: need from < to, got %v and %v", ErrInvalid, q.From, q.To)
	}
	if q.To.Sub(q.From)/q.Bucket > maxStatsBuckets {
		return nil, fmt.Errorf("%w: stats: more than %d buckets", ErrInvalid, maxStatsBuckets)
	}
	bucketMin := uint32(q.Bucket / time.Minute)
	fromMin := unixMinute(q.From)
	toMin := unixMinute(q.To.Add(time.Minute - 1)) // round up
	lower := appendU32([]byte{s.k.p, tableStats, dim}, fromMin)
	upper := appendU32([]byte{s.k.p, tableStats, dim}, toMin)

	res := &StatsResult{From: q.From, To: q.To, BucketSeconds: int64(q.Bucket / time.Second), By: q.By}
	// Per bucket, one accumulator per (group, stage), found through idx by
	// value bytes + stage code; accumulators and group names are reused
	// across buckets so a day of minutes allocates little beyond the result.
	type acc struct {
		group string
		stage Stage
		agg   statAgg
	}
	var (
		cur     = ^uint32(0)
		accs    []acc
		idx     = map[string]int{}
		names   = map[string]string{}
		order   []int
		kb      []byte
		byStage [numStages]statAgg
		n       int
	)
	flush := func() {
		if len(accs) == 0 {
			return
		}
		order = order[:0]
		for i := range accs {
			order = append(order, i)
		}
		slices.SortFunc(order, func(x, y int) int {
			a, b := &accs[x], &accs[y]
			if dim != dimStage { // by stage: pipeline order, not names
				if c := strings.Compare(a.group, b.group); c != 0 {
					return c
				}
			}
			return int(a.stage.code()) - int(b.stage.code())
		})
		bk := StatsBucket{Start: time.Unix(int64(cur)*60, 0).UTC(), Groups: make([]StatsGroup, 0, len(accs))}
		for _, i := range order {
			a := &accs[i]
			bk.Groups = append(bk.Groups, a.agg.group(a.group, a.stage))
			byStage[a.stage.code()-1].merge(&a.agg)
		}
		res.Buckets = append(res.Buckets, bk)
		accs = accs[:0]
		clear(idx)
	}
	err = scan(r, lower, upper, false, func(it *pebble.Iterator) (bool, error) {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return false, err
			}
		}
		k := it.Key()[3:]
		if len(k) < 6 {
			return false, errCorrupt
		}
		minute := binary.BigEndian.Uint32(k)
		vlen, m := binary.Uvarint(k[4:])
		rest := k[4+max(m, 0):]
		if m <= 0 || uint64(len(rest)) != vlen+1 {
			return false, errCorrupt
		}
		st := stageOf(rest[vlen])
		if st == "" {
			return false, errCorrupt
		}
		if b := minute - minute%bucketMin; b != cur {
			flush()
			cur = b
		}
		kb = append(kb[:0], rest...) // value bytes + stage code
		j, ok := idx[string(kb)]
		if !ok {
			group := string(st)
			if dim != dimStage {
				var known bool
				if group, known = names[string(rest[:vlen])]; !known {
					group = string(rest[:vlen])
					names[group] = group
				}
			}
			j = len(accs)
			accs = append(accs, acc{group: group, stage: st})
			idx[string(kb)] = j
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return false, err
		}
		if err := mergeEncodedStat(&accs[j].agg, v); err != nil {
			return false, fmt.Errorf("decode stats: %w", err)
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("tracking: stats: %w", err)
	}
	flush()

	var total int64
	for i := range byStage {
		total += byStage[i].latencyNanos
	}
	var best int64 = -1
	for i := range byStage {
		a := &byStage[i]
		if a.blocks == 0 {
			continue
		}
		sum := StageSummary{StatsGroup: a.group(string(Stages[i]), Stages[i])}
		if total > 0 {
			sum.Share = float64(a.latencyNanos) / float64(total)
		}
		res.Stages = append(res.Stages, sum)
		if a.latencyNanos > best {
			best = a.latencyNanos
			res.Bottleneck = Stages[i]
		}
	}
	return res, nil
}
