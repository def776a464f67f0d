package tracking

import (
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"
)

// Recorder writes tracking records into one Writer (one Pebble batch).
//
// Updating a transaction's status and the per-minute statistics is a
// read-modify-write, and an unindexed Pebble batch cannot be read, so the
// Recorder keeps what it wrote in a small in-memory overlay: reads go to
// the overlay first and then to r, the committed state the batch will be
// applied on top of. Every call writes the full new values through to w
// immediately (a later Set of the same key in the batch wins), so there is
// nothing to flush: use one Recorder per batch and drop it with the batch.
// A Recorder must not outlive its batch and must not be shared between
// goroutines.
//
// Determinism: the Recorder never reads the clock or a random source; every
// time comes from the records. Fed the same calls on top of the same state,
// every node writes the same bytes.
//
// Errors: every method returns its error after counting it in
// Store.WriteErrors and passing it to Config.OnWriteError. The caller (the
// FSM) must not fail the ingest because of it. A failed call may have
// written part of its records into the batch; tracking data is then
// incomplete, never inconsistent with the ingested data.
type Recorder struct {
	s     *Store
	r     Reader
	w     Writer
	txs   map[[ulidLen]byte]*txEntry
	stats map[string]*statAgg
	obj   objBatch
	buf   []byte
	// restage: this Recorder only rebuilds staged object calls in memory
	// (NewRestager): no writes, no counters, no folds.
	restage bool
}

// txEntry is the overlay state of one transaction.
type txEntry struct {
	st     *txState // nil: no record (neither in r nor in the batch)
	blocks [numStages]*Block
}

// NewRecorder returns a Recorder writing into w on top of the committed
// state r. In the FSM, r is the state's *pebble.DB and w the apply batch.
func (s *Store) NewRecorder(r Reader, w Writer) *Recorder {
	return &Recorder{
		s:     s,
		r:     r,
		w:     w,
		txs:   make(map[[ulidLen]byte]*txEntry),
		stats: make(map[string]*statAgg),
	}
}

func (rc *Recorder) fail(err error) error {
	if err == nil {
		return nil
	}
	rc.s.writeErrors.Add(1)
	if f := rc.s.cfg.OnWriteError; f != nil {
		f(err)
	}
	return err
}

// entry returns the overlay entry of id, loading it from r on first use.
func (rc *Recorder) entry(id [ulidLen]byte) (*txEntry, error) {
	if e, ok := rc.txs[id]; ok {
		return e, nil
	}
	e := &txEntry{}
	_, err := get(rc.r, rc.s.k.tx(id), func(v []byte) error {
		st, err := decodeTxState(id, v)
		e.st = st
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read transaction: %w", err)
	}
	rc.txs[id] = e
	return e, nil
}

// RecordTransaction creates or updates a transaction. Descriptive fields
// and counts replace earlier ones (pass cumulative counts); block state is
// kept; Status and Updated are derived. A zero Created defaults to the
// id's timestamp. The id must be a ULID.
func (rc *Recorder) RecordTransaction(tx Transaction) error {
	return rc.fail(rc.recordTransaction(tx))
}

func (rc *Recorder) recordTransaction(tx Transaction) error {
	id, err := parseID(tx.ID)
	if err != nil {
		return err
	}
	if !tx.Source.valid() {
		return fmt.Errorf("%w: transaction %s: unknown source %q", ErrInvalid, tx.ID, tx.Source)
	}
	e, err := rc.entry(id)
	if err != nil {
		return err
	}
	old := e.st
	st := &txState{recorded: true}
	if old != nil {
		st.stages, st.lastError = old.stages, old.lastError
	}
	st.tx = tx
	st.tx.ID = formatULID(id)
	if st.tx.Created.IsZero() {
		st.tx.Created = ulidTime(id)
	}
	st.tx.Created = st.tx.Created.UTC()
	upd := latest(st.tx.Created, tx.Updated)
	if old != nil {
		upd = latest(upd, old.tx.Updated)
	}
	st.tx.Updated = upd.UTC()
	st.tx.Status = deriveStatus(st, &rc.s.required)
	return rc.putTx(id, e, st)
}

// RecordBlock records the block of one stage of transaction txID and
// updates the transaction's status, Updated time and progress, and the
// per-minute statistics (at the minute of b.Finished, or b.Started if
// unfinished). A repeated record of the same stage is merged into the
// stored block (see Block.Parts). A block for an unknown transaction
// creates a stub that a later RecordTransaction completes.
func (rc *Recorder) RecordBlock(txID string, b Block) error {
	return rc.fail(rc.recordBlock(txID, b))
}

func (rc *Recorder) recordBlock(txID string, b Block) error {
	id, err := parseID(txID)
	if err != nil {
		return err
	}
	if err := validateBlock(b); err != nil {
		return fmt.Errorf("%w (transaction %s)", err, txID)
	}
	b.Started, b.Finished = b.Started.UTC(), b.Finished.UTC()
	if b.Finished.IsZero() {
		b.Finished = b.Started
	}
	e, err := rc.entry(id)
	if err != nil {
		return err
	}
	st := &txState{}
	if e.st != nil {
		*st = *e.st
	} else {
		st.tx = Transaction{ID: formatULID(id), Created: ulidTime(id)}
	}
	i := b.Stage.code() - 1
	merged := b
	merged.Parts = 1
	if st.stages[i] != 0 {
		old, err := rc.block(id, e, b.Stage)
		if err != nil {
			return err
		}
		merged = mergeBlock(old, b)
	}
	st.stages[i] = merged.Status.code()
	if b.Error != "" {
		st.lastError = b.Error
	}
	st.tx.Updated = latest(st.tx.Updated, b.Finished).UTC()
	st.tx.Status = deriveStatus(st, &rc.s.required)

	rc.buf = encodeBlock(rc.buf[:0], &merged)
	if err := rc.w.Set(rc.s.k.block(id, b.Stage), rc.buf, nil); err != nil {
		return err
	}
	e.blocks[i] = &merged
	if err := rc.putTx(id, e, st); err != nil {
		return err
	}
	return rc.addStats(st, &b)
}

// block returns the stored block of stage st (overlay first).
func (rc *Recorder) block(id [ulidLen]byte, e *txEntry, st Stage) (Block, error) {
	i := st.code() - 1
	if e.blocks[i] != nil {
		return *e.blocks[i], nil
	}
	var blk Block
	found, err := get(rc.r, rc.s.k.block(id, st), func(v []byte) error {
		var err error
		blk, err = decodeBlock(st, v)
		return err
	})
	if err != nil {
		return Block{}, fmt.Errorf("read block: %w", err)
	}
	if !found { // stage marked but block missing: start over
		return Block{Stage: st}, nil
	}
	if blk.Parts == 0 {
		blk.Parts = 1
	}
	e.blocks[i] = &blk
	return blk, nil
}

// putTx writes st and moves the index entries whose value changed.
func (rc *Recorder) putTx(id [ulidLen]byte, e *txEntry, st *txState) error {
	old := e.st
	type ix struct {
		dim      byte
		old, new string
		had, has bool
	}
	ixs := [3]ix{
		{dim: dimDataset, new: st.tx.Dataset, has: st.recorded},
		{dim: dimSource, new: string(st.tx.Source), has: st.recorded},
		{dim: dimStatus, new: string(st.tx.Status), has: true},
	}
	if old != nil {
		ixs[0].old, ixs[0].had = old.tx.Dataset, old.recorded
		ixs[1].old, ixs[1].had = string(old.tx.Source), old.recorded
		ixs[2].old, ixs[2].had = string(old.tx.Status), true
	}
	for _, x := range ixs {
		if x.had == x.has && x.old == x.new {
			continue
		}
		if x.had {
			if err := rc.w.Delete(rc.s.k.index(id, x.dim, x.old), nil); err != nil {
				return err
			}
		}
		if x.has {
			if err := rc.w.Set(rc.s.k.index(id, x.dim, x.new), nil, nil); err != nil {
				return err
			}
		}
	}
	rc.buf = encodeTxState(rc.buf[:0], st)
	if err := rc.w.Set(rc.s.k.tx(id), rc.buf, nil); err != nil {
		return err
	}
	e.st = st
	return nil
}

// RecordRejections records the rejected rows of transaction txID. Several
// rejections of one row are kept in order; recording the same row again
// overwrites its earlier rejections position by position.
func (rc *Recorder) RecordRejections(txID string, rs []Rejection) error {
	return rc.fail(rc.recordRejections(txID, rs))
}

func (rc *Recorder) recordRejections(txID string, rs []Rejection) error {
	id, err := parseID(txID)
	if err != nil {
		return err
	}
	seq := uint16(0)
	for i := range rs {
		r := &rs[i]
		if r.Row < 0 || int64(r.Row) > 1<<32-1 {
			return fmt.Errorf("%w: transaction %s: row %d out of range", ErrInvalid, txID, r.Row)
		}
		if i > 0 && rs[i-1].Row == r.Row {
			seq++
		} else {
			seq = 0
		}
		rc.buf = encodeRejection(rc.buf[:0], r)
		if err := rc.w.Set(rc.s.k.rejection(id, uint32(r.Row), seq), rc.buf, nil); err != nil {
			return err
		}
	}
	return nil
}

// RecordObjects records the appearance of objects (rows with an object id)
// of transaction txID in dataset at time at (kept to the millisecond). The
// entries are grouped by object bucket into one staged value (keys.go,
// "Object index"): a 10,000-entry call costs one batch Set of about 1,000
// bucket chunks, one small Set of the index's counters and one read of
// the transaction; about every ObjectFoldEntries staged entries a call
// also folds the staged calls into runs (about 1,000 Sets and one
// DeleteRange, a copy of the staged bytes). Record the transaction first
// so its dataset need not be repeated in every chunk.
//
// Within a transaction, record each (row, stage) pair once (calls for
// different parts of a transaction carry different rows): a staged call's
// key is its transaction, time and smallest (row, stage), so repeating a
// whole call is idempotent, but a call at the same millisecond with the
// same smallest (row, stage) and other entries replaces the earlier call
// if it is still staged. Callers should record one entry per object per
// transaction where they can: the furthest stage reached (rejected at
// validate, or accepted at apply) says everything the earlier stages
// would. Entries without an object id are skipped. entries is not
// modified or retained. Callers call it only for datasets with an
// object-id column and track_objects enabled.
func (rc *Recorder) RecordObjects(txID string, dataset string, at time.Time, entries []ObjectEntry) error {
	return rc.fail(rc.recordObjects(txID, dataset, at, entrySource(entries)))
}

// ObjectColumn is a column of object ids (arrow's *array.String has these
// methods; tracking does not import arrow).
type ObjectColumn interface {
	Len() int
	IsNull(i int) bool
	Value(i int) string
}

// RowColumn gives the row number of each object of an ObjectColumn
// (arrow's *array.Int32).
type RowColumn interface {
	Value(i int) int32
}

// RecordApplied is RecordObjects for the accepted rows of one applied
// batch: every non-null id ids.Value(i) is recorded at stage apply,
// outcome accepted, row rows.Value(i), without building ObjectEntry values
// (the FSM's hot path). ids and rows are not retained.
func (rc *Recorder) RecordApplied(txID string, dataset string, at time.Time, ids ObjectColumn, rows RowColumn) error {
	return rc.fail(rc.recordObjects(txID, dataset, at, new(newColumnSource(ids, rows))))
}

// objectSource is what recordObjects reads entries from.
type objectSource interface {
	len() int
	// entry returns entry i: its object id ("" means no entry), row and
	// code (stage<<2 | outcome), or an error naming an unknown stage or
	// outcome.
	entry(i int) (id string, row int, code byte, err error)
	// id returns entry i's object id (entry i has one).
	id(i int) string
	// reject returns the field and reason of rejected entry i.
	reject(i int) (field, reason string)
}

type entrySource []ObjectEntry

func (es entrySource) len() int { return len(es) }
func (es entrySource) entry(i int) (string, int, byte, error) {
	e := &es[i]
	if e.ObjectID == "" {
		return "", 0, 0, nil
	}
	stc, oc := e.Stage.code(), e.Outcome.code()
	if stc == 0 {
		return "", 0, 0, fmt.Errorf("object %q: unknown stage %q", e.ObjectID, e.Stage)
	}
	if oc == 0 {
		return "", 0, 0, fmt.Errorf("object %q: unknown outcome %q", e.ObjectID, e.Outcome)
	}
	return e.ObjectID, e.Row, stc<<2 | oc, nil
}
func (es entrySource) id(i int) string               { return es[i].ObjectID }
func (es entrySource) reject(i int) (string, string) { return es[i].Field, es[i].Reason }

// appliedCode is the code of every entry of RecordApplied.
var appliedCode = StageApply.code()<<2 | OutcomeAccepted.code()

// columnSource reads the entries of RecordApplied from its columns:
// straight from their buffers when the columns expose them and the ids
// have no nulls (arrow's arrays do: then no method is called per row),
// else through the ObjectColumn and RowColumn methods.
type columnSource struct {
	ids  ObjectColumn
	rows RowColumn
	raw  bool
	offs []int32 // ids' offsets into data, rebased on offs[0]
	data []byte
	rowv []int32
}

// rawStrings is implemented by string columns that expose their buffers
// (arrow's *array.String): n+1 offsets into the bytes of the values,
// which start at the first offset.
type rawStrings interface {
	NullN() int
	ValueOffsets() []int32
	ValueBytes() []byte
}

// rawInt32s is implemented by int32 columns that expose their values
// (arrow's *array.Int32).
type rawInt32s interface {
	Int32Values() []int32
}

func newColumnSource(ids ObjectColumn, rows RowColumn) columnSource {
	c := columnSource{ids: ids, rows: rows}
	rs, ok1 := ids.(rawStrings)
	ri, ok2 := rows.(rawInt32s)
	if !ok1 || !ok2 || rs.NullN() != 0 {
		return c
	}
	n := ids.Len()
	offs, rowv := rs.ValueOffsets(), ri.Int32Values()
	if len(offs) != n+1 || len(rowv) < n {
		return c
	}
	c.raw, c.offs, c.data, c.rowv = true, offs, rs.ValueBytes(), rowv[:n]
	return c
}

func (c *columnSource) len() int { return c.ids.Len() }
func (c *columnSource) entry(i int) (string, int, byte, error) {
	if c.raw {
		return c.id(i), int(c.rowv[i]), appliedCode, nil
	}
	if c.ids.IsNull(i) {
		return "", 0, 0, nil
	}
	return c.ids.Value(i), int(c.rows.Value(i)), appliedCode, nil
}
func (c *columnSource) id(i int) string {
	if c.raw {
		// The bytes stay valid and unchanged while the call reads them
		// (RecordApplied's and PrepareApplied's contracts).
		b := c.offs[0]
		return unsafe.String(unsafe.SliceData(c.data[c.offs[i]-b:]), c.offs[i+1]-c.offs[i])
	}
	return c.ids.Value(i)
}
func (c *columnSource) reject(int) (string, string) { return "", "" }

// noBucket marks an entry without an object id in objScratch.bk.
const noBucket = 0xffff

// objScratch is RecordObjects' working memory, pooled in the Store: it
// builds all chunks of a call in one buffer in two sequential passes over
// the entries (no sorting, no random access to the entries).
type objScratch struct {
	bk     []uint16 // per entry: bucket, or noBucket
	code   []byte   // per entry: stage<<2 | outcome
	shared []byte   // per entry: id prefix shared with the bucket's previous entry
	delta  []int64  // per entry: row minus the bucket's previous entry's row
	// The bucket's previous entry's id and row (kept here rather than
	// read back from entries, which costs a cache miss per entry);
	// prevID is cleared after each call so no caller string is retained.
	prevID  [objectBuckets]string
	prevRow [objectBuckets]int
	n       [objectBuckets]int32
	// first is the bucket's smallest (row, stage): row<<8 | stage code.
	first [objectBuckets]uint64
	// body[b] is the size of bucket b's entries; pos[b] is the next
	// entry's offset in buf while encoding.
	body [objectBuckets]int
	pos  [objectBuckets]int
	buf  []byte
	// The sums of scan: the entries' total size, their number and the
	// call's smallest (row, stage) as in first.
	total, entries int
	firstAll       uint64
}

func (rc *Recorder) recordObjects(txID, dataset string, at time.Time, src objectSource) error {
	id, err := parseID(txID)
	if err != nil {
		return err
	}
	sc := rc.s.getObjScratch()
	defer rc.s.putObjScratch(sc)
	if err := sc.scan(txID, src); err != nil {
		return err
	}
	return rc.stageScanned(sc, id, dataset, at, src, nil)
}

// stageScanned stages the call that sc.scan scanned from src. encoded is
// sc's encoding without the dataset (sc.encode(src, "", false)), or nil.
func (rc *Recorder) stageScanned(sc *objScratch, id [ulidLen]byte, dataset string, at time.Time, src objectSource, encoded []byte) error {
	if sc.entries == 0 {
		return nil
	}
	// The dataset goes into every chunk only if the transaction record
	// cannot supply it (one read per call, usually from the overlay).
	e, err := rc.entry(id)
	if err != nil {
		return err
	}
	withDataset := dataset != "" && (e.st == nil || !e.st.recorded || e.st.tx.Dataset != dataset)
	buf := encoded
	if buf == nil || withDataset {
		buf = sc.encode(src, dataset, withDataset)
	}
	key := rc.s.k.objStage(unixDay(at), msOfDay(at), id, uint32(sc.firstAll>>8), byte(sc.firstAll))
	return rc.stageObjects(key, buf, sc.entries)
}

func (s *Store) getObjScratch() *objScratch {
	sc, _ := s.objScratch.Get().(*objScratch)
	if sc == nil {
		sc = new(objScratch)
	}
	return sc
}

func (s *Store) putObjScratch(sc *objScratch) {
	clear(sc.prevID[:])
	s.objScratch.Put(sc)
}

// scan is pass 1 of a call: it validates src's entries, buckets them and
// sizes every chunk's body (sc.entries 0: nothing to record).
func (sc *objScratch) scan(txID string, src objectSource) error {
	n := src.len()
	if cap(sc.bk) < n {
		sc.bk = make([]uint16, n)
		sc.code = make([]byte, n)
		sc.shared = make([]byte, n)
		sc.delta = make([]int64, n)
	}
	bks := sc.bk[:n]
	clear(sc.n[:])
	clear(sc.body[:])
	sc.total, sc.entries, sc.firstAll = 0, 0, ^uint64(0)
	if cs, ok := src.(*columnSource); ok && cs.raw {
		// The common case without a method call per row.
		for i, row := range cs.rowv {
			if row < 0 {
				return fmt.Errorf("%w: transaction %s: row %d out of range", ErrInvalid, txID, row)
			}
			if oid := cs.id(i); oid != "" {
				sc.add(i, oid, int(row), appliedCode, "", "")
			} else {
				bks[i] = noBucket
			}
		}
		sc.sum()
		return nil
	}
	for i := range n {
		oid, row, code, err := src.entry(i)
		if err != nil {
			return fmt.Errorf("%w: transaction %s: %w", ErrInvalid, txID, err)
		}
		if oid == "" {
			bks[i] = noBucket
			continue
		}
		if row < 0 || int64(row) > 1<<32-1 {
			return fmt.Errorf("%w: transaction %s: row %d out of range", ErrInvalid, txID, row)
		}
		var field, reason string
		if code&3 == 2 {
			field, reason = src.reject(i)
		}
		sc.add(i, oid, row, code, field, reason)
	}
	sc.sum()
	return nil
}

// add is scan's work for entry i.
func (sc *objScratch) add(i int, oid string, row int, code byte, field, reason string) {
	bk := objectBucket(oid)
	sc.bk[i], sc.code[i] = bk, code
	sh, d := 0, int64(row)
	if sc.n[bk] > 0 {
		sh, d = commonPrefix(sc.prevID[bk], oid), int64(row-sc.prevRow[bk])
	}
	sc.prevID[bk], sc.prevRow[bk] = oid, row
	sc.shared[i], sc.delta[i] = byte(sh), d
	size := objectEntrySize(oid, field, reason, sh, d, code)
	sc.body[bk] += size
	sc.total += size
	sc.entries++
	rs := uint64(row)<<8 | uint64(code>>2)
	if sc.n[bk] == 0 || rs < sc.first[bk] {
		sc.first[bk] = rs
	}
	sc.n[bk]++
}

// sum ends scan.
func (sc *objScratch) sum() {
	for b := range objectBuckets {
		if sc.n[b] > 0 {
			sc.firstAll = min(sc.firstAll, sc.first[b])
		}
	}
}

// encode is pass 2 of a call that scan found entries in: it lays the
// chunks out in sc.buf behind the directory of the staged value
// (keys.go), each with the dataset if withDataset, and encodes every
// entry in place, in call order per bucket. The result is valid until
// sc's next encode.
func (sc *objScratch) encode(src objectSource, dataset string, withDataset bool) []byte {
	total := sc.total
	hdr := 2
	if withDataset {
		hdr += uvarintLen(uint64(len(dataset))) + len(dataset)
	}
	nb := 0
	for b := range objectBuckets {
		if sc.n[b] > 0 {
			total += hdr + uvarintLen(uint64(sc.n[b]))
			nb++
		}
	}
	dirLen := 1 + uvarintLen(uint64(nb)) + objDirEntryLen*nb
	total += dirLen
	if cap(sc.buf) < total {
		sc.buf = make([]byte, total)
	}
	buf := sc.buf[:total]
	dir := binary.AppendUvarint(append(buf[:0], codecV1), uint64(nb))
	at0 := dirLen
	for b := range objectBuckets {
		if sc.n[b] == 0 {
			continue
		}
		h := appendObjectChunkHeader(buf[at0:at0], dataset, withDataset, int(sc.n[b]))
		sc.pos[b] = at0 + len(h)
		at0 += len(h) + sc.body[b]
		dir = appendU32(appendU16(dir, uint16(b)), uint32(at0))
	}
	bks, codes := sc.bk[:src.len()], sc.code
	cs, _ := src.(*columnSource)
	for i, bk := range bks {
		if bk == noBucket {
			continue
		}
		var field, reason string
		if codes[i]&3 == 2 {
			field, reason = src.reject(i)
		}
		var oid string
		if cs != nil {
			oid = cs.id(i) // (direct call)
		} else {
			oid = src.id(i)
		}
		p := sc.pos[bk]
		sc.pos[bk] = p + len(appendObjectEntry(buf[p:p], oid, field, reason, int(sc.shared[i]), sc.delta[i], codes[i]))
	}
	return buf
}

// Expire is Store.Expire on the Recorder's batch, with the error counted.
// A record written later in the same batch for an expired transaction or
// minute recreates it.
func (rc *Recorder) Expire(before time.Time) error {
	if err := rc.s.Expire(rc.w, before); err != nil {
		return rc.fail(err)
	}
	return rc.fail(rc.expireObjects(before))
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
