package cluster

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"

	"github.com/demandflow/demandflow/stream"
	"github.com/demandflow/demandflow/tracking"
)

// Tracking in the FSM.
//
// Tracking records ride inside the Raft entries and are written by the FSM
// into the same Pebble batch as the data they describe (tracking.Recorder
// over applyCtx.b), under prefixTracking, so every node holds the same
// records and a snapshot carries them. What each entry records:
//
//   - CmdIngest, per part: the transaction (cumulative counts), this
//     part's share of the commit block (its rows and entry bytes), its
//     rejected rows, and its object-index entries (rejected
//     rows at validate with field and reason, accepted rows at apply; one
//     entry per object per transaction and stage) when the dataset
//     TracksObjects. The apply block is recorded once, with the part that
//     completes the transaction, so a transaction whose parts did not all
//     arrive stays in_progress with commit as its last completed stage.
//     The first part applied also records the ingress and validate blocks
//     of the whole transaction (they ran once, on the receiving node).
//   - CmdTrackBlocks: blocks of the stages after apply (forecast, egress),
//     proposed in batches by Cluster.RecordBlocks.
//   - CmdTrackExpire: range deletes of everything older than the cutoff
//     the leader chose.
//
// Times are deterministic: ingress, validate and the start of commit come
// from the receiving node's measurements in the entry header; the end of
// commit and the apply time are the leader's raft.Log.AppendedAt (the
// entry's header times when it is zero). Apply never reads the clock, so
// the apply block has no duration of its own: its span runs from the
// first part's append to the last part's.
//
// The object-index calls of a part are the exception to "same batch": the
// tracking store keeps staged calls in memory (VolatileStaging) and only
// the counters, folds and a pending key (prefixTrackPending | raft index)
// go into the batch. A fold drops the pending keys (its runs hold the
// calls); FSM.Snapshot writes the calls in memory into the staging table
// and drops the pending keys, durable before Raft may delete the entries
// (synced, or flushed by the snapshot's Persist when the store has no
// WAL); after a restart Raft replays every
// entry after its last snapshot, and ApplyBatch, which skips the entries
// it already applied, stages the calls of those with a pending key again
// (restageObjects). So every node answers the same, but the staging
// table's bytes depend on when a node took a snapshot.
//
// A dataset created with "tracking": false records nothing: its parts
// still update the transaction record (idempotency) but write no tracking
// records, and its dirty marks carry no transaction, so no forecast block
// follows.
//
// Tracking never fails an ingest: Recorder errors are counted
// (Store.TrackingWriteErrors, the demandflow_tracking_write_errors_total
// metric) and the Monitor raises the tracking_write alarm; the ingest's
// response is unchanged.

// maxTrackError bounds a block's error text in a CmdTrackBlocks entry.
const maxTrackError = 512

// newTrackingStore returns the tracking store embedded in the FSM's Pebble
// instance.
func newTrackingStore(cfg StoreConfig, db *pebble.DB, opts *pebble.Options) (*tracking.Store, error) {
	log := cfg.Logger.With("component", "tracking")
	var logged atomic.Int64
	return tracking.New(tracking.Config{
		Prefix: prefixTracking,
		// Staged object calls stay in memory; pendingObjects keys and
		// the Raft log rebuild them after a restart (restageObjects).
		VolatileStaging: true,
		RunPrefix:       prefixTrackingRuns,
		// Folds of the object index ingest their runs below everything
		// else (tracking/keys.go, "Where runs go"); the directory is
		// inside Pebble's, which ignores it.
		RunIngest: &tracking.RunIngest{DB: db, Options: opts, Dir: opts.FS.PathJoin(cfg.Dir, "tracking-runs")},
		Retention: cfg.TrackingRetention,
		Logger:    log,
		// Called on the apply goroutine: log the first error and then
		// every 1000th; the Monitor turns the count into an alarm.
		OnWriteError: func(err error) {
			if n := logged.Add(1); n == 1 || n%1000 == 0 {
				log.Warn("tracking write failed; ingest unaffected", "errors", n, "error", err)
			}
		},
	}, db)
}

// Tracking returns the tracking store. Its queries read the FSM's Pebble
// instance (a nil Reader) or a view from TrackingReader.
func (s *Store) Tracking() *tracking.Store { return s.track }

// TrackingWriteErrors returns how many tracking writes failed during apply
// since the store was opened.
func (s *Store) TrackingWriteErrors() int64 { return s.track.WriteErrors() }

// TrackingReader returns a consistent read-only view of the tracking
// records for several queries, and the applied index it reflects at least.
// The caller must call release when done.
func (s *Store) TrackingReader() (r tracking.Reader, index uint64, release func()) {
	index = s.AppliedIndex() // before the snapshot: the view holds at least this index
	snap := s.db.NewSnapshot()
	return snap, index, func() { _ = snap.Close() }
}

// recorder returns the batch's tracking recorder, or nil when tracking is
// off (benchmarks).
func (f *FSM) recorder(ac *applyCtx) *tracking.Recorder {
	if f.trackingOff {
		return nil
	}
	if ac.track == nil {
		var w tracking.Writer = ac.b
		if f.trackWriter != nil {
			w = f.trackWriter(w)
		}
		ac.track = ac.s.track.NewRecorder(ac.s.db, w)
	}
	return ac.track
}

// entryTimes are the stage boundaries of one ingest part.
type entryTimes struct {
	received, validateStart, validateEnd, commitStart, appended time.Time
}

func ingestTimes(h *ingestHeader, l *raft.Log) entryTimes {
	var t entryTimes
	t.received = time.Unix(0, h.ReceivedAt).UTC()
	t.validateStart = orTime(h.ValidateStart, t.received)
	t.validateEnd = orTime(h.ValidateEnd, t.validateStart)
	t.commitStart = orTime(h.CommitStart, t.validateEnd)
	t.appended = t.commitStart
	if l != nil && !l.AppendedAt.IsZero() && l.AppendedAt.After(t.commitStart) {
		// The leader's clock; a follower's clock ahead of it would make
		// commit end before it started, so it is clamped.
		t.appended = l.AppendedAt.UTC()
	}
	return t
}

// orTime returns unix ns ns as a time, or def when ns is 0.
func orTime(ns int64, def time.Time) time.Time {
	if ns == 0 {
		return def
	}
	return time.Unix(0, ns).UTC()
}

func unixNanoOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// trackIngest records one applied ingest part (see the comment at the top
// of this file). tx is the transaction record after this part, first is
// true when this part created it, rows counts the part's accepted rows.
// Errors are counted by the Recorder and otherwise ignored.
func (f *FSM) trackIngest(ac *applyCtx, e *dsEntry, h *ingestHeader, recs []arrow.RecordBatch, prep *tracking.PreparedObjects, rows int, tx *txRecordWire, first bool) {
	t := ingestTimes(h, ac.log)
	entryBytes := int64(len(ac.log.Data))
	if first || tx.ApplyStart == 0 {
		tx.ApplyStart = t.appended.UnixNano()
	}
	tx.EntryBytes += entryBytes
	if !e.schema.Tracks() {
		return
	}
	rec := f.recorder(ac)
	if rec == nil {
		return
	}
	id := tx.TxID
	if rec.RecordTransaction(tracking.Transaction{
		ID: id, Dataset: tx.Dataset, Source: tracking.Source(tx.Source), ContentType: h.ContentType,
		Bytes: tx.Bytes, Created: time.Unix(0, tx.Created).UTC(), In: int64(tx.RowsIn),
		Accepted: int64(tx.Accepted), Rejected: int64(tx.Rejected), Node: tx.Node,
		IdempotencyKey: idempotencyKeyOf(tx),
	}) != nil {
		return // the transaction is the anchor of every other record
	}
	var blocks []tracking.Block
	if first {
		// Ingress and validate happened once, on the receiving node, for
		// the whole transaction; whichever part is applied first says so.
		in := int64(h.RowsIn)
		validateErr := ""
		switch {
		case h.RejectedRows == 1:
			validateErr = "1 row rejected"
		case h.RejectedRows > 1:
			validateErr = fmt.Sprintf("%d rows rejected", h.RejectedRows)
		}
		blocks = append(blocks,
			tracking.Block{Stage: tracking.StageIngress, Status: tracking.BlockSuccess, Started: t.received, Finished: t.validateStart,
				RowsIn: in, RowsOut: in, Node: h.Node, Bytes: h.Bytes},
			tracking.Block{Stage: tracking.StageValidate, Status: tracking.BlockSuccess, Started: t.validateStart, Finished: t.validateEnd,
				RowsIn: in, RowsOut: max(in-int64(h.RejectedRows), 0), Error: validateErr, Node: h.Node,
				CPUTime: time.Duration(h.ValidateCPU), Bytes: h.Bytes})
	}
	// Commit: this part's share.
	blocks = append(blocks, tracking.Block{Stage: tracking.StageCommit, Status: tracking.BlockSuccess, Started: t.commitStart,
		Finished: t.appended, RowsIn: int64(rows), RowsOut: int64(rows), Node: h.Node, Bytes: entryBytes})
	if tx.PartsApplied >= tx.Parts {
		// The part that completes the transaction records the apply block
		// for all parts: every node applies, so it names no node.
		blocks = append(blocks, tracking.Block{Stage: tracking.StageApply, Status: tracking.BlockSuccess,
			Started: time.Unix(0, tx.ApplyStart).UTC(), Finished: t.appended,
			RowsIn: int64(tx.Accepted), RowsOut: int64(tx.Accepted), Bytes: tx.EntryBytes})
	}
	for _, b := range blocks {
		_ = rec.RecordBlock(id, b)
	}
	if len(h.Errors) > 0 {
		rs := make([]tracking.Rejection, len(h.Errors))
		for i, re := range h.Errors {
			rs[i] = tracking.Rejection{Row: re.Row, ObjectID: re.ObjectID, Field: re.Field, Reason: re.Reason}
		}
		_ = rec.RecordRejections(id, rs)
	}
	if e.schema.TracksObjects() {
		folds := rec.Folds()
		oi := e.schema.IdxObjectID()
		start := time.Now() // metrics only
		trackObjects(rec, oi, id, tx.Dataset, h.Errors, recs, prep, t)
		if rec.Folds() != folds {
			f.metrics.objectFold.Observe(time.Since(start).Seconds())
			// Everything staged before is in runs now.
			must(ac.b.DeleteRange(pendingTable()))
		}
		must(ac.b.Set(pendingKey(ac.log.Index), msgpackEncode(&pendingObjects{TxID: id, Dataset: tx.Dataset, ObjectCol: oi}), nil))
	}
}

// pendingObjects is the value of a pending key: what restageObjects needs
// besides the entry itself to record its object calls again.
type pendingObjects struct {
	TxID      string `codec:"tx"`
	Dataset   string `codec:"ds"`
	ObjectCol int    `codec:"oc"`
}

func pendingKey(index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixTrackPending}, index)
}

// pendingTable returns the bounds of the pending keys and nil options,
// for DeleteRange.
func pendingTable() (lo, hi []byte, o *pebble.WriteOptions) {
	return []byte{prefixTrackPending}, []byte{prefixTrackPending + 1}, nil
}

// restageObjects records again, in memory, the object-index calls of an
// entry replayed at or below the applied index, if its calls were staged
// in memory only when the node stopped (its pending key is there). rs is
// created on first use; the caller publishes it.
func (f *FSM) restageObjects(rs **tracking.Recorder, re *replayedEntry) {
	l := re.l
	v, ok := f.store.get(pendingKey(l.Index))
	if !ok {
		return
	}
	fail := func(err error) {
		f.logger.Warn("tracking: cannot stage the object calls of a replayed entry again", "raft_index", l.Index, "error", err)
	}
	var p pendingObjects
	if err := decodeHeader(v, &p); err != nil {
		fail(err)
		return
	}
	hdr, recs, err := re.decode(f.mem)
	if err != nil {
		fail(err)
		return
	}
	if *rs == nil {
		*rs = f.store.track.NewRestager(f.store.db)
	}
	trackObjects(*rs, p.ObjectCol, p.TxID, p.Dataset, hdr.Errors, recs, nil, ingestTimes(hdr, l))
}

// idempotencyKeyOf returns the client's idempotency key, "" when the key is
// the transaction id itself.
func idempotencyKeyOf(tx *txRecordWire) string {
	if tx.Key == tx.TxID {
		return ""
	}
	return tx.Key
}

// prepareObjects starts encoding the object-index calls of the accepted
// rows of one part (recs) on another goroutine, or returns nil when the
// part records none. trackObjects records what it prepared.
func (f *FSM) prepareObjects(ac *applyCtx, e *dsEntry, h *ingestHeader, recs []arrow.RecordBatch) *tracking.PreparedObjects {
	oi := e.schema.IdxObjectID()
	if f.trackingOff || !e.schema.Tracks() || !e.schema.TracksObjects() || oi < 0 {
		return nil
	}
	cols := appliedColumns(recs, oi)
	if len(cols) == 0 {
		return nil
	}
	return f.store.track.PrepareApplied(h.TxID, h.Dataset, ingestTimes(h, ac.log).appended, cols)
}

// appliedColumns returns the object-id (column oi) and row columns of the
// records of recs that have rows.
func appliedColumns(recs []arrow.RecordBatch, oi int) []tracking.AppliedColumns {
	cols := make([]tracking.AppliedColumns, 0, len(recs))
	for _, r := range recs {
		if r.NumRows() > 0 {
			cols = append(cols, tracking.AppliedColumns{IDs: r.Column(oi).(*array.String), Rows: r.Column(stream.IdxRow).(*array.Int32)})
		}
	}
	return cols
}

// trackObjects records the object-index entries of one part: one entry per
// rejected row with an object id (validate, rejected, at the end of
// validate) and one per accepted row (apply, accepted, at the append),
// read straight from the batch's object-id and row columns, or recorded
// from prep (prepareObjects) when it has the calls of transaction id in
// dataset. (A retried transaction's later parts carry a new id, while
// its record keeps the first one.)
func trackObjects(rec *tracking.Recorder, oi int, id, dataset string, errs []stream.RowError, recs []arrow.RecordBatch, prep *tracking.PreparedObjects, t entryTimes) {
	if len(errs) > 0 {
		ents := make([]tracking.ObjectEntry, 0, len(errs))
		for _, re := range errs {
			if re.ObjectID != "" {
				ents = append(ents, tracking.ObjectEntry{ObjectID: re.ObjectID, Row: re.Row,
					Stage: tracking.StageValidate, Outcome: tracking.OutcomeRejected, Field: re.Field, Reason: re.Reason})
			}
		}
		if len(ents) > 0 {
			_ = rec.RecordObjects(id, dataset, t.validateEnd, ents)
		}
	}
	if prep != nil && prep.For(id, dataset) {
		_ = rec.RecordPrepared(prep)
		return
	}
	if oi < 0 {
		return
	}
	for _, c := range appliedColumns(recs, oi) {
		_ = rec.RecordApplied(id, dataset, t.appended, c.IDs, c.Rows)
	}
}

// TrackBlock is one tracking block of transaction TxID, for
// Cluster.RecordBlocks and EncodeTrackBlocks.
type TrackBlock struct {
	TxID  string
	Block tracking.Block
}

// trackBlockWire is TrackBlock in a CmdTrackBlocks header (times unix ns).
type trackBlockWire struct {
	TxID     string `codec:"tx"`
	Stage    string `codec:"stage"`
	Status   string `codec:"status"`
	Started  int64  `codec:"start"`
	Finished int64  `codec:"end"`
	RowsIn   int64  `codec:"in"`
	RowsOut  int64  `codec:"out"`
	Error    string `codec:"err"`
	Node     string `codec:"node"`
	CPU      int64  `codec:"cpu"` // ns
	Bytes    int64  `codec:"bytes"`
}

type trackBlocksHeader struct {
	Blocks []trackBlockWire `codec:"blocks"`
}

type trackExpireHeader struct {
	Before int64  `codec:"before"` // unix ns
	By     string `codec:"by"`
}

// EncodeTrackBlocks encodes the command that records bs (error texts are
// truncated to 512 bytes). Keep an entry small: Cluster.RecordBlocks
// batches at most 500 blocks.
func EncodeTrackBlocks(bs []TrackBlock) ([]byte, error) {
	if len(bs) == 0 {
		return nil, fmt.Errorf("encode track blocks: no blocks")
	}
	h := trackBlocksHeader{Blocks: make([]trackBlockWire, len(bs))}
	for i, tb := range bs {
		b := tb.Block
		h.Blocks[i] = trackBlockWire{TxID: tb.TxID, Stage: string(b.Stage), Status: string(b.Status),
			Started: unixNanoOrZero(b.Started), Finished: unixNanoOrZero(b.Finished), RowsIn: b.RowsIn, RowsOut: b.RowsOut,
			Error: truncate(b.Error, maxTrackError), Node: b.Node, CPU: int64(b.CPUTime), Bytes: b.Bytes}
	}
	return encodeEntry(CmdTrackBlocks, &h, nil)
}

// EncodeTrackExpire encodes the command that deletes the tracking records
// older than before (see tracking.Store.Expire), proposed by node by.
func EncodeTrackExpire(before time.Time, by string) ([]byte, error) {
	if before.IsZero() {
		return nil, fmt.Errorf("encode track expire: zero cutoff")
	}
	return encodeEntry(CmdTrackExpire, &trackExpireHeader{Before: before.UnixNano(), By: by}, nil)
}

// applyTrackBlocks records the blocks of a CmdTrackBlocks entry; a block
// the tracking store rejects is counted and skipped.
func (f *FSM) applyTrackBlocks(ac *applyCtx, index uint64, h []byte) any {
	var hdr trackBlocksHeader
	if err := decodeHeader(h, &hdr); err != nil {
		divergence(CmdTrackBlocks, index, err)
	}
	rec := f.recorder(ac)
	if rec == nil {
		return nil
	}
	for _, w := range hdr.Blocks {
		_ = rec.RecordBlock(w.TxID, tracking.Block{
			Stage: tracking.Stage(w.Stage), Status: tracking.BlockStatus(w.Status),
			Started: orTime(w.Started, time.Time{}), Finished: orTime(w.Finished, time.Time{}),
			RowsIn: w.RowsIn, RowsOut: w.RowsOut, Error: w.Error, Node: w.Node,
			CPUTime: time.Duration(w.CPU), Bytes: w.Bytes,
		})
	}
	return nil
}

// applyTrackExpire deletes tracking records older than the entry's cutoff
// with range deletes.
func (f *FSM) applyTrackExpire(ac *applyCtx, index uint64, h []byte) any {
	var hdr trackExpireHeader
	if err := decodeHeader(h, &hdr); err != nil {
		divergence(CmdTrackExpire, index, err)
	}
	if rec := f.recorder(ac); rec != nil && hdr.Before != 0 {
		_ = rec.Expire(time.Unix(0, hdr.Before).UTC())
	}
	return nil
}

// distinctRows counts the distinct rows of errs (a row may have several
// errors, listed together).
func distinctRows(errs []stream.RowError) int {
	n := 0
	for i := range errs {
		if i == 0 || errs[i].Row != errs[i-1].Row {
			n++
		}
	}
	return n
}
