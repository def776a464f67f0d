package cluster

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/demandflow/demandflow/stream"
	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
)

// MaxTxErrors is the number of rejected rows a transaction record keeps.
const MaxTxErrors = 100

// IngestResult is the FSM's response to one ingest part.
type IngestResult struct {
	TxID     string `codec:"tx"`
	Part     int    `codec:"part"`
	Parts    int    `codec:"parts"`
	Accepted int    `codec:"acc"`
	Rejected int    `codec:"rej"`
	// Errors are all of this part's rejected rows.
	Errors []stream.RowError `codec:"errors"`
	// Duplicate is true when the part had already been applied for the same
	// idempotency key; the other fields are then the recorded first result
	// and nothing was stored.
	Duplicate bool `codec:"-"`
}

// TxRecord is the FSM's record of one ingest transaction, keyed by dataset
// and idempotency key. It is immutable once returned.
type TxRecord struct {
	// Key is the idempotency key (the client's, or the first TxID).
	Key string
	// TxID is the id of the first transaction that applied a part.
	TxID    string
	Dataset string
	Source  string
	Node    string
	// Parts is the part count of the first transaction; PartsApplied counts
	// distinct parts applied so far.
	Parts        int
	PartsApplied int
	// Accepted and Rejected sum the rows of the applied parts.
	Accepted int
	Rejected int
	RowsIn   int
	Bytes    int64
	// Errors holds the first MaxTxErrors rejected rows.
	Errors []stream.RowError
	// Created is the ingress time of the first transaction.
	Created time.Time
	// Index is the Raft index of the first applied part.
	Index uint64
}

// Complete reports whether every part of the transaction was applied.
func (r *TxRecord) Complete() bool { return r.PartsApplied >= r.Parts }

// txRecordWire is TxRecord as stored (msgpack; times as unix ns).
type txRecordWire struct {
	Key          string            `codec:"key"`
	TxID         string            `codec:"tx"`
	Dataset      string            `codec:"ds"`
	Source       string            `codec:"src"`
	Node         string            `codec:"node"`
	Parts        int               `codec:"parts"`
	PartsApplied int               `codec:"applied"`
	Accepted     int               `codec:"acc"`
	Rejected     int               `codec:"rej"`
	RowsIn       int               `codec:"rows_in"`
	Bytes        int64             `codec:"bytes"`
	Errors       []stream.RowError `codec:"errors"`
	Created      int64             `codec:"created"`
	Index        uint64            `codec:"index"`
	// Tracking accumulators (fsm_tracking.go): when the first part was
	// applied (unix ns) and the entry bytes of the applied parts.
	ApplyStart int64 `codec:"apply_start"`
	EntryBytes int64 `codec:"entry_bytes"`
}

func (w *txRecordWire) record() *TxRecord {
	return &TxRecord{
		Key: w.Key, TxID: w.TxID, Dataset: w.Dataset, Source: w.Source, Node: w.Node,
		Parts: w.Parts, PartsApplied: w.PartsApplied, Accepted: w.Accepted, Rejected: w.Rejected,
		RowsIn: w.RowsIn, Bytes: w.Bytes, Errors: w.Errors, Created: time.Unix(0, w.Created).UTC(), Index: w.Index,
	}
}

func msgpackEncode(v any) []byte {
	var out []byte
	if err := codec.NewEncoderBytes(&out, msgpackHandle).Encode(v); err != nil {
		panic(fmt.Sprintf("cluster: fsm: encode record: %v", err))
	}
	return out
}

// applyIngest applies one ingest part. Response: *IngestResult, or an error
// wrapping ErrUnknownDataset or ErrSchemaMismatch.
func (f *FSM) applyIngest(ac *applyCtx, index uint64, h, payload []byte) any {
	var hdr ingestHeader
	if err := decodeHeader(h, &hdr); err != nil {
		divergence(CmdIngest, index, err)
	}
	e := ac.dataset(hdr.Dataset)
	if e == nil {
		return fmt.Errorf("%w: %q", ErrUnknownDataset, hdr.Dataset)
	}
	if prev := ac.partResult(e.id, hdr.Key, hdr.Part); prev != nil {
		dup := *prev
		dup.Duplicate = true
		return &dup
	}
	recs, err := decodeRows(payload, hdr.Codec, f.mem)
	if err != nil {
		divergence(CmdIngest, index, err)
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	as := e.schema.ArrowSchema()
	rows := 0
	for _, r := range recs {
		if !r.Schema().Equal(as) {
			// The dataset was re-created with another schema between
			// validation and apply.
			return fmt.Errorf("%w: dataset %q", ErrSchemaMismatch, hdr.Dataset)
		}
		rows += int(r.NumRows())
	}
	// The object index's encoding of this part runs beside writeRows.
	prep := f.prepareObjects(ac, e, &hdr, recs)
	defer prep.Release() // (before the records are released)
	st := ac.statsOf(e)
	// The part's series, at most one per row: sized once (appending
	// grew it through a dozen copies per 10,000-row part).
	sids := make([]uint64, 0, rows)
	staged := len(ac.staged)
	for i, r := range recs {
		ac.writeRows(e, st, index, uint32(i), r, false)
		// writeRows left r's rows sorted by series in ac.order.
		for _, o := range ac.order {
			if len(sids) == 0 || sids[len(sids)-1] != o.sid {
				sids = append(sids, o.sid)
			}
		}
	}
	if len(recs) > 1 {
		slices.Sort(sids)
		sids = slices.Compact(sids)
	}
	if len(ac.staged) > staged {
		// The blocks stay in memory: a restart stages them again from
		// this entry (obsstore.go, "Volatile blocks").
		var v [4]byte
		putU32(v[:], e.id)
		must(ac.b.Set(stagedPendingKey(index), v[:], nil))
	}
	ac.markDirty(e, index, trackedTx(e, hdr.TxID), sids)
	ac.ingested++
	res := &IngestResult{
		TxID: hdr.TxID, Part: hdr.Part, Parts: hdr.Parts,
		Accepted: rows, Rejected: len(hdr.Errors), Errors: hdr.Errors,
	}
	ac.parts[partRef{e.id, hdr.Key, hdr.Part}] = res
	must(ac.b.Set(txPartKey(e.id, hdr.Key, hdr.Part), msgpackEncode(res), nil))

	tx := ac.txRecord(e.id, hdr.Key)
	first := tx == nil
	if tx == nil {
		tx = &txRecordWire{
			Key: hdr.Key, TxID: hdr.TxID, Dataset: hdr.Dataset, Source: hdr.Source, Node: hdr.Node,
			Parts: hdr.Parts, RowsIn: hdr.RowsIn, Bytes: hdr.Bytes, Created: hdr.ReceivedAt, Index: index,
		}
		ac.txs[txRef{e.id, hdr.Key}] = tx
		st.txs++
	}
	tx.PartsApplied++
	tx.Accepted += rows
	tx.Rejected += len(hdr.Errors)
	if room := MaxTxErrors - len(tx.Errors); room > 0 {
		tx.Errors = append(tx.Errors, hdr.Errors[:min(room, len(hdr.Errors))]...)
	}
	// Tracking first: it updates tx's tracking accumulators.
	f.trackIngest(ac, e, &hdr, recs, prep, rows, tx, first)
	must(ac.b.Set(txKey(e.id, hdr.Key), msgpackEncode(tx), nil))
	st.accepted += int64(rows)
	st.rejected += int64(len(hdr.Errors))
	return res
}

// replayedEntry is an entry Raft replays at or below the applied index.
// Its ingest payload is decoded at most once, for whichever restage
// needs it (observations, object calls, dirty marks), and released after
// all of them.
type replayedEntry struct {
	l       *raft.Log
	headed  bool // header ran
	ingest  bool // an ingest entry with a valid header
	payload []byte
	decoded bool
	hdr     ingestHeader
	recs    []arrow.RecordBatch
	err     error
}

// header returns the entry's ingest header, and false when the entry is
// not an ingest entry (or its header does not decode: decode says why).
func (re *replayedEntry) header() (*ingestHeader, bool) {
	if !re.headed {
		re.headed = true
		t, h, payload, err := splitEntry(re.l.Data)
		switch {
		case err != nil || t != CmdIngest:
			re.err = fmt.Errorf("not an ingest entry (%v)", err)
		default:
			if err := decodeHeader(h, &re.hdr); err != nil {
				re.err = err
			} else {
				re.ingest, re.payload = true, payload
			}
		}
	}
	return &re.hdr, re.ingest
}

// decode returns the entry's ingest header and records.
func (re *replayedEntry) decode(mem memory.Allocator) (*ingestHeader, []arrow.RecordBatch, error) {
	if _, ok := re.header(); ok && !re.decoded {
		re.decoded = true
		re.recs, re.err = decodeRows(re.payload, re.hdr.Codec, mem)
	}
	return &re.hdr, re.recs, re.err
}

func (re *replayedEntry) release() {
	for _, r := range re.recs {
		r.Release()
	}
	re.recs = nil
}

// restageObservations stages again, in memory, the blocks of an ingest
// entry at or below the applied index whose pending key says no fold
// wrote them before the restart (obsstore.go, "Volatile blocks"). Raft
// replays entries in order, so the blocks join the pending list in apply
// order.
func (f *FSM) restageObservations(ac *applyCtx, re *replayedEntry) {
	l := re.l
	v, ok := f.store.get(stagedPendingKey(l.Index))
	if !ok {
		return
	}
	if len(v) != 4 {
		panic(fmt.Sprintf("cluster: fsm: corrupt staged pending key of index %d", l.Index))
	}
	e := ac.entryByID(binary.BigEndian.Uint32(v))
	if e == nil {
		return // the dataset was deleted since; a later fold or persistVolatile deletes the key
	}
	_, recs, err := re.decode(f.mem)
	if err != nil {
		divergence(CmdIngest, l.Index, fmt.Errorf("staged pending key: %w", err))
	}
	n := len(ac.staged)
	for i, r := range recs {
		ac.writeRows(e, nil, l.Index, uint32(i), r, true)
	}
	blocks := slices.Clone(ac.staged[n:])
	ac.staged = ac.staged[:n]
	f.store.publishStaged(blocks)
}

// trackedTx returns txID, or "" when the dataset is not tracked: a dirty
// mark's transaction only gets a forecast tracking block.
func trackedTx(e *dsEntry, txID string) string {
	if !e.schema.Tracks() {
		return ""
	}
	return txID
}

// partResult returns the recorded result of an applied part, or nil.
func (ac *applyCtx) partResult(dsid uint32, key string, part int) *IngestResult {
	if r, ok := ac.parts[partRef{dsid, key, part}]; ok {
		return r
	}
	v, ok := ac.s.get(txPartKey(dsid, key, part))
	if !ok {
		return nil
	}
	r := &IngestResult{}
	if err := decodeHeader(v, r); err != nil {
		panic(fmt.Sprintf("cluster: fsm: corrupt part record: %v", err))
	}
	ac.parts[partRef{dsid, key, part}] = r
	return r
}

// txRecord returns the transaction record as of this point of the batch, or nil.
func (ac *applyCtx) txRecord(dsid uint32, key string) *txRecordWire {
	if r, ok := ac.txs[txRef{dsid, key}]; ok {
		return r
	}
	v, ok := ac.s.get(txKey(dsid, key))
	if !ok {
		return nil
	}
	r := &txRecordWire{}
	if err := decodeHeader(v, r); err != nil {
		panic(fmt.Sprintf("cluster: fsm: corrupt transaction record: %v", err))
	}
	ac.txs[txRef{dsid, key}] = r
	return r
}

// rowOrder is one row's sort key in writeRows.
type rowOrder struct {
	sid    uint64
	period int32
	row    int32
}

// writeRows stages the observations of one validated record (record rec of
// the entry at index) as one volatile block (obsstore.go) and writes the
// dictionary entries of series not seen before. Duplicates of (series,
// period) follow the dataset's policy: under "last" the later row in body
// order wins, under "sum" the measures add up (also to older data of the
// period). With restage it only builds the block again (the entry was
// applied before a restart: its dictionary entries are stored).
func (ac *applyCtx) writeRows(e *dsEntry, st *dsStats, index uint64, rec uint32, r arrow.RecordBatch, restage bool) {
	sc := e.schema
	sids := r.Column(stream.IdxSeriesID).(*array.Uint64)
	periods := r.Column(stream.IdxPeriod).(*array.Date32)
	dims := make([]*array.String, len(sc.Dimensions))
	for i := range dims {
		dims[i] = r.Column(stream.IdxFirstDimension + i).(*array.String)
	}
	measure := r.Column(sc.IdxMeasure()).(*array.Float64)
	covs := make([]*array.Float64, len(sc.Covariates))
	for i := range covs {
		covs[i] = r.Column(sc.IdxCovariate(i)).(*array.Float64)
	}
	var objs *array.String
	if i := sc.IdxObjectID(); i >= 0 {
		objs = r.Column(i).(*array.String)
	}
	sum := sc.Duplicates == stream.DuplicatesSum
	if e.known == nil {
		e.known = &seriesSet{}
	}
	covVals := make([]float64, len(covs))
	covNull := make([]bool, len(covs))
	dimVals := make([]string, len(dims))
	var lastSID uint64
	haveLast := false
	// Stage in (series id, period) order; ties break on the row number,
	// so rows of the same (series, period) keep their body order and the
	// later one still wins under "last".
	n := int(r.NumRows())
	order := ac.order[:0]
	for i := range n {
		order = append(order, rowOrder{sid: sids.Value(i), period: int32(periods.Value(i)), row: int32(i)})
	}
	order, ac.orderTmp = sortRows(order, ac.orderTmp)
	ac.order = order
	bb := &ac.block
	bb.reset(sum, n)
	for _, o := range order {
		i := int(o.row)
		sid := o.sid
		if !restage && (!haveLast || sid != lastSID) {
			ref := seriesRef{e.id, sid}
			if !e.known.Has(sid) {
				if _, ok := ac.series[ref]; !ok {
					for j, d := range dims {
						dimVals[j] = d.Value(i)
					}
					must(ac.b.Set(seriesKey(e.id, sid), encodeDims(dimVals), nil))
					st.series++
					ac.series[ref] = e
				}
			}
			lastSID, haveLast = sid, true
		}
		for j, c := range covs {
			covNull[j] = c.IsNull(i)
			covVals[j] = c.Value(i)
		}
		obj, hasObj := "", false
		if objs != nil && objs.IsValid(i) {
			obj, hasObj = objs.Value(i), true
		}
		ac.valBuf = appendObsValue(ac.valBuf[:0], measure.Value(i), covVals, covNull, obj, hasObj)
		bb.add(sid, biasPeriod(int32(periods.Value(i))), ac.valBuf)
	}
	if bb.rows == 0 {
		return
	}
	blk := bb.finish(e.id, stagedKey(e.id, index, rec))
	blk.volatile = true
	ac.staged = append(ac.staged, blk)
}

// compareRows orders rows by (series id, period, row).
func compareRows(a, b rowOrder) int {
	if c := cmp.Compare(a.sid, b.sid); c != 0 {
		return c
	}
	if c := cmp.Compare(a.period, b.period); c != 0 {
		return c
	}
	return cmp.Compare(a.row, b.row)
}

// sortRows sorts order by (series id, period), keeping the rows of equal
// keys in row order (the given order: writeRows builds order in it), and
// returns the sorted slice and the other buffer for reuse (order and tmp
// must not overlap). A counting sort on the ids' top bits (sidbuckets.go),
// then per bucket an insertion sort (stable) or, past 48 rows (a series
// with many periods in the body, or ids crafted to share their top bits),
// a comparison sort that breaks ties on the row. On a period-major
// 10,000-row record that is 49 us, against 164 for the byte-wise radix
// sort it replaced and 890 for a comparison sort (BenchmarkSortRows).
func sortRows(order, tmp []rowOrder) (sorted, spare []rowOrder) {
	n := len(order)
	if n < 256 {
		slices.SortFunc(order, compareRows)
		return order, tmp
	}
	if cap(tmp) < n {
		tmp = make([]rowOrder, n)
	}
	tmp = tmp[:n]
	shift, counts := sidBuckets(n, 20, nil)
	for i := range order {
		counts[order[i].sid>>shift+1]++
	}
	bucketStarts(counts)
	for i := range order {
		k := order[i].sid >> shift
		tmp[counts[k]] = order[i]
		counts[k]++
	}
	sortBuckets(tmp, counts, 48, insertionSortRows, func(o []rowOrder) { slices.SortFunc(o, compareRows) })
	return tmp, order
}

// insertionSortRows sorts a few rows by (series id, period), stably.
func insertionSortRows(o []rowOrder) {
	for i := 1; i < len(o); i++ {
		x := o[i]
		j := i
		for ; j > 0 && (o[j-1].sid > x.sid || o[j-1].sid == x.sid && o[j-1].period > x.period); j-- {
			o[j] = o[j-1]
		}
		o[j] = x
	}
}
