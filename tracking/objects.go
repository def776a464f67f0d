package tracking

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// The object index's staging table, folds into runs, and the reads of
// both (keys.go, "Object index", has the layout and the reasons).

const (
	// objDirEntryLen is the size of one directory entry of a staged call:
	// bucket u16 | end u32.
	objDirEntryLen = 2 + 4
	// objCallIDLen is the size of a call identity in a run chunk, the
	// staging key after its day: ms u32 | ulid[16] | row u32 | stage u8.
	objCallIDLen = objStageKeyLen - objDayPrefixLen
)

// objMeta is the value of the meta key metaObjects: what is staged since
// the last fold, the id of the next run, and the day before which Expire
// deleted the object index (folds write nothing older: keys.go, "Where
// runs go").
type objMeta struct {
	calls, entries, bytes uint64
	run                   uint32
	expired               uint32
}

// objMetaV2 is the version byte of an objMeta with the expired day;
// version 1 (codecV1) values have none (expired 0).
const objMetaV2 byte = 2

func encodeObjMeta(b []byte, m *objMeta) []byte {
	b = append(b, objMetaV2)
	b = binary.AppendUvarint(b, m.calls)
	b = binary.AppendUvarint(b, m.entries)
	b = binary.AppendUvarint(b, m.bytes)
	b = binary.AppendUvarint(b, uint64(m.run))
	return binary.AppendUvarint(b, uint64(m.expired))
}

func decodeObjMeta(v []byte) (objMeta, error) {
	d := dec{b: v}
	ver := d.byte()
	if d.err == nil && ver != codecV1 && ver != objMetaV2 {
		d.fail()
	}
	m := objMeta{calls: d.uvarint(), entries: d.uvarint(), bytes: d.uvarint()}
	run := d.uvarint()
	var expired uint64
	if ver == objMetaV2 {
		expired = d.uvarint()
	}
	if d.err == nil && (run > 1<<32-1 || expired > 1<<32-1 || len(d.b) != 0) {
		d.fail()
	}
	if d.err != nil {
		return objMeta{}, fmt.Errorf("decode object index counters: %w", d.err)
	}
	m.run, m.expired = uint32(run), uint32(expired)
	return m, nil
}

// objBatch is a Recorder's object-index state in its batch. The batch
// cannot be read, so the calls staged in it are kept here for a fold.
type objBatch struct {
	meta   *objMeta     // the counters (overlay); nil until read
	staged []stagedCall // staged in this batch since its last fold, by key
	// folded says the batch already folded, so the committed staged calls
	// (still visible in Recorder.r) are gone.
	folded bool
	// folds counts the folds of this Recorder (Folds).
	folds int
}

// stagedCall is one staged RecordObjects call: its staging key and value.
type stagedCall struct{ key, val []byte }

func stagedDay(key []byte) uint32 { return binary.BigEndian.Uint32(key[2:]) }

// objMeta returns the overlay's counters, reading them on first use.
func (rc *Recorder) objMeta() (*objMeta, error) {
	if rc.obj.meta != nil {
		return rc.obj.meta, nil
	}
	m := &objMeta{}
	_, err := get(rc.r, rc.s.k.meta(metaObjects), func(v []byte) error {
		var err error
		*m, err = decodeObjMeta(v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read object index counters: %w", err)
	}
	rc.obj.meta = m
	return m, nil
}

// stageObjects stages one call: key is its staging key, v its value (a
// scratch buffer: copied if kept) holding entries entries. The call that
// reaches a fold threshold is folded with all staged calls instead.
func (rc *Recorder) stageObjects(key, v []byte, entries int) error {
	m, err := rc.objMeta()
	if err != nil {
		return err
	}
	if stagedDay(key) < m.expired {
		return nil // retention already deleted that day
	}
	if rc.restage {
		rc.keepStaged(key, v)
		return nil
	}
	m.calls++
	m.entries += uint64(entries)
	m.bytes += uint64(len(v))
	cfg := &rc.s.cfg
	if m.calls >= uint64(cfg.ObjectFoldCalls) || m.entries >= uint64(cfg.ObjectFoldEntries) || m.bytes >= uint64(cfg.ObjectFoldBytes) {
		if err := rc.foldObjects(stagedCall{key: key, val: v}); err != nil {
			return err
		}
		*m = objMeta{run: m.run + 1, expired: m.expired}
	} else {
		if !rc.s.cfg.VolatileStaging {
			if err := rc.w.Set(key, v, nil); err != nil {
				return err
			}
		}
		rc.keepStaged(key, v)
	}
	rc.buf = encodeObjMeta(rc.buf[:0], m)
	return rc.w.Set(rc.s.k.meta(metaObjects), rc.buf, nil)
}

// keepStaged adds a staged call to the batch's list (a later call with
// the same key replaces it), copying key and v.
func (rc *Recorder) keepStaged(key, v []byte) {
	rc.obj.staged = putCall(rc.obj.staged, stagedCall{key: bytes.Clone(key), val: bytes.Clone(v)})
}

// putCall adds c to calls (sorted by key), replacing a call with the same
// key, and returns the slice.
func putCall(calls []stagedCall, c stagedCall) []stagedCall {
	i, found := slices.BinarySearchFunc(calls, c.key, func(c stagedCall, k []byte) int { return bytes.Compare(c.key, k) })
	if found {
		calls[i] = c
		return calls
	}
	return slices.Insert(calls, i, c)
}

// volStage holds the committed staged calls of a store with
// Config.VolatileStaging, by key. Published replaces the slices (never
// mutates them in place), so a reader may keep the ones it got.
//
// recent keeps the calls that the last fold (or PersistStaged) took out
// of calls: a query reading through an older Pebble snapshot (a view
// taken before the fold committed) sees neither the new runs nor the
// persisted calls, so lookups read recent too; what they find twice is
// one event (lookups drop repeated positions).
type volStage struct {
	mu     sync.RWMutex
	calls  []stagedCall
	recent []stagedCall
}

// get returns the current calls (do not modify).
func (v *volStage) get() []stagedCall {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.calls
}

// forLookup returns the current and the recently folded calls, by key.
func (v *volStage) forLookup() []stagedCall {
	v.mu.RLock()
	calls, recent := v.calls, v.recent
	v.mu.RUnlock()
	if len(recent) == 0 {
		return calls
	}
	all := slices.Concat(recent, calls)
	slices.SortStableFunc(all, func(a, b stagedCall) int { return bytes.Compare(a.key, b.key) })
	return all
}

// Published tells the Recorder that its batch committed. With
// Config.VolatileStaging the calls it staged join the store's in-memory
// staged calls (after a fold in the batch they replace them, as the
// fold's range deletion replaces the staging table), and calls of days
// expired in the batch leave them. Without VolatileStaging it does
// nothing. Call it once per committed batch, before the next Recorder
// records; never for a batch that was not committed.
func (rc *Recorder) Published() {
	if !rc.s.cfg.VolatileStaging || rc.obj.meta == nil {
		return // (staging, folding and expiring all read the counters first)
	}
	v := &rc.s.vol
	v.mu.Lock()
	defer v.mu.Unlock()
	var calls []stagedCall
	if rc.obj.folded {
		v.recent = v.calls
	} else {
		calls = slices.Clone(v.calls)
	}
	for _, c := range rc.obj.staged {
		calls = putCall(calls, c)
	}
	if m := rc.obj.meta; m != nil && m.expired > 0 {
		old := func(c stagedCall) bool { return stagedDay(c.key) < m.expired }
		calls = slices.DeleteFunc(calls, old)
		if slices.ContainsFunc(v.recent, old) {
			v.recent = slices.DeleteFunc(slices.Clone(v.recent), old)
		}
	}
	v.calls = calls
	rc.obj.staged, rc.obj.folded = nil, false
}

// Folds returns how many times this Recorder folded the object index: a
// caller that keeps its own record of the unfolded calls (with
// Config.VolatileStaging) drops it when the count moves.
func (rc *Recorder) Folds() int { return rc.obj.folds }

// NewRestager returns a Recorder that only rebuilds staged calls of the
// object index in memory, for a store with Config.VolatileStaging: after
// a restart, the caller records again (RecordObjects, RecordApplied) the
// calls of what it applied since the staged calls were last persisted or
// folded, reading the committed state r, then calls Published. It writes
// nothing, counts nothing and never folds: the counters already include
// those calls. Calls of expired days are dropped.
func (s *Store) NewRestager(r Reader) *Recorder {
	rc := s.NewRecorder(r, nil)
	rc.restage = true
	return rc
}

// PersistStaged writes the in-memory staged calls of a store with
// Config.VolatileStaging into the staging table through w (for a snapshot
// of the state, which must carry them); after w commits, call
// DropStaged. Both are no-ops without VolatileStaging.
func (s *Store) PersistStaged(w Writer) error {
	if !s.cfg.VolatileStaging {
		return nil
	}
	for _, c := range s.vol.get() {
		if err := w.Set(c.key, c.val, nil); err != nil {
			return fmt.Errorf("tracking: persist staged objects: %w", err)
		}
	}
	return nil
}

// DropStaged forgets the in-memory staged calls after PersistStaged
// committed (lookups through older views still see them for a while).
func (s *Store) DropStaged() {
	s.vol.mu.Lock()
	s.vol.recent, s.vol.calls = s.vol.calls, nil
	s.vol.mu.Unlock()
}

// ResetStaged forgets every in-memory staged call, also the recently
// folded ones: the whole state was replaced (snapshot restore).
func (s *Store) ResetStaged() {
	s.vol.mu.Lock()
	s.vol.recent, s.vol.calls = nil, nil
	s.vol.mu.Unlock()
}

// StagedInMemory returns how many staged calls are held in memory.
func (s *Store) StagedInMemory() int { return len(s.vol.get()) }

// foldScratch is foldObjects' working memory, kept in the Store.
type foldScratch struct {
	arena []byte // committed staged calls, copied out of the iterator
	spans [][4]int
	calls []stagedCall
	size  [objectBuckets]int
	pos   [objectBuckets]int
	out   []byte   // the run chunks of every day, in key order
	runs  []runKey // their keys: run chunk i is out[runs[i-1].end:runs[i].end]
}

// runKey is the key of one run chunk of a fold and the end of its value
// in foldScratch.out.
type runKey struct {
	key [objRunKeyLen]byte
	end int
}

// foldObjects folds every staged call into runs: the committed ones (read
// through rc.r unless the batch folded or expired them), the ones staged
// earlier in this batch, and cur (not written to the staging table);
// later ones replace earlier ones with the same key. It writes one run
// per day present, with id rc.obj.meta.run, and range-deletes the staging
// table.
func (rc *Recorder) foldObjects(cur stagedCall) error {
	fs := rc.s.foldScratch.Swap(nil)
	if fs == nil {
		fs = new(foldScratch)
	}
	defer func() {
		clear(fs.calls)
		if limit := 2 * rc.s.cfg.ObjectFoldBytes; cap(fs.arena) > limit || cap(fs.out) > limit {
			return // after an unusually large fold: let it go
		}
		rc.s.foldScratch.Store(fs)
	}()
	fs.arena, fs.spans, fs.calls = fs.arena[:0], fs.spans[:0], fs.calls[:0]
	fs.out, fs.runs = fs.out[:0], fs.runs[:0]
	k := rc.s.k
	expired := rc.obj.meta.expired
	if !rc.obj.folded {
		// The staged bytes counted since the last fold bound the
		// committed ones (plus their keys).
		if n := int(rc.obj.meta.bytes + rc.obj.meta.calls*objStageKeyLen); cap(fs.arena) < n {
			fs.arena = make([]byte, 0, n+n/8)
		}
		err := scan(rc.r, objDay(k.p, tableObjStage, expired), k.tableEnd(tableObjStage), false, func(it *pebble.Iterator) (bool, error) {
			if len(it.Key()) != objStageKeyLen {
				return false, errCorrupt
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return false, err
			}
			n := len(fs.arena)
			fs.arena = append(append(fs.arena, it.Key()...), v...)
			fs.spans = append(fs.spans, [4]int{n, n + len(it.Key()), n + len(it.Key()), len(fs.arena)})
			return true, nil
		})
		if err != nil {
			return fmt.Errorf("read staged objects: %w", err)
		}
	}
	for _, sp := range fs.spans {
		fs.calls = append(fs.calls, stagedCall{key: fs.arena[sp[0]:sp[1]], val: fs.arena[sp[2]:sp[3]]})
	}
	if !rc.obj.folded {
		// The committed calls held in memory (VolatileStaging), which
		// sort in with the table's (a persisted copy has the same key).
		for _, c := range rc.s.vol.get() {
			if stagedDay(c.key) >= expired {
				fs.calls = append(fs.calls, c)
			}
		}
	}
	calls := append(append(fs.calls, rc.obj.staged...), cur)
	// Stable: of equal keys the later (the batch's, then cur) is last.
	slices.SortStableFunc(calls, func(a, b stagedCall) int { return bytes.Compare(a.key, b.key) })
	w := 0
	for i := range calls {
		if w > 0 && bytes.Equal(calls[w-1].key, calls[i].key) {
			w--
		}
		calls[w] = calls[i]
		w++
	}
	calls = calls[:w]
	fs.calls = calls

	run := rc.obj.meta.run
	for i := 0; i < len(calls); {
		day := stagedDay(calls[i].key)
		j := i + 1
		for j < len(calls) && stagedDay(calls[j].key) == day {
			j++
		}
		if day >= expired {
			if err := rc.buildRun(fs, day, run, calls[i:j]); err != nil {
				return err
			}
		}
		i = j
	}
	if err := rc.putRuns(fs); err != nil {
		return err
	}
	if err := rc.w.DeleteRange(k.table(tableObjStage), k.tableEnd(tableObjStage), nil); err != nil {
		return err
	}
	rc.obj.staged = nil
	rc.obj.folded = true
	rc.obj.folds++
	return nil
}

// buildRun appends run run of day from calls (all of that day, by key) to
// fs.out and fs.runs: for every touched bucket, the bucket's chunks of all
// calls, each behind its call identity.
func (rc *Recorder) buildRun(fs *foldScratch, day, run uint32, calls []stagedCall) error {
	clear(fs.size[:])
	for _, c := range calls {
		err := forStagedChunks(c.val, func(b uint16, chunk []byte) {
			fs.size[b] += objCallIDLen + uvarintLen(uint64(len(chunk))) + len(chunk)
		})
		if err != nil {
			return fmt.Errorf("staged objects %x: %w", c.key, err)
		}
	}
	base := len(fs.out)
	total := base
	for b, n := range fs.size {
		if n > 0 {
			fs.pos[b] = total
			total += 1 + n
		}
	}
	fs.out = slices.Grow(fs.out, total-base)[:total]
	out := fs.out
	for b, n := range fs.size {
		if n > 0 {
			out[fs.pos[b]] = codecV1
			fs.pos[b]++
		}
	}
	for _, c := range calls {
		id := c.key[objDayPrefixLen:]
		_ = forStagedChunks(c.val, func(b uint16, chunk []byte) {
			p := fs.pos[b]
			p += copy(out[p:], id)
			p += binary.PutUvarint(out[p:], uint64(len(chunk)))
			fs.pos[b] = p + copy(out[p:], chunk)
		})
	}
	for b, n := range fs.size {
		if n == 0 {
			continue
		}
		rk := runKey{end: fs.pos[b]}
		copy(rk.key[:], objRun(rc.s.k.q, day, run, uint16(b)))
		fs.runs = append(fs.runs, rk)
	}
	return nil
}

// putRuns writes the runs built in fs: ingested as one sstable when the
// store has a RunIngest, else (or if the ingest fails) into the batch.
// Both write the same keys and values (keys.go, "Where runs go").
func (rc *Recorder) putRuns(fs *foldScratch) error {
	if len(fs.runs) == 0 {
		return nil
	}
	kv := func(i int) ([]byte, []byte) {
		start := 0
		if i > 0 {
			start = fs.runs[i-1].end
		}
		return fs.runs[i].key[:], fs.out[start:fs.runs[i].end]
	}
	if ri := rc.s.ingest; ri != nil {
		err := ri.ingest(len(fs.runs), len(fs.out), kv)
		if err == nil {
			return nil
		}
		rc.s.ingestErrors.Add(1)
		rc.s.cfg.Logger.Warn("tracking: object index run not ingested, writing it through the batch", "error", err)
	}
	for i := range fs.runs {
		k, v := kv(i)
		if err := rc.w.Set(k, v, nil); err != nil {
			return err
		}
	}
	return nil
}

// expireObjects records that Expire(before) deleted the object index
// before before's day: the counters keep the day (no later fold or call
// writes older data), and the calls staged earlier in the batch for older
// days are dropped.
func (rc *Recorder) expireObjects(before time.Time) error {
	if before.IsZero() {
		return nil
	}
	day := unixDay(before)
	m, err := rc.objMeta()
	if err != nil {
		return err
	}
	rc.obj.staged = slices.DeleteFunc(rc.obj.staged, func(c stagedCall) bool { return stagedDay(c.key) < day })
	if day <= m.expired {
		return nil
	}
	m.expired = day
	rc.buf = encodeObjMeta(rc.buf[:0], m)
	return rc.w.Set(rc.s.k.meta(metaObjects), rc.buf, nil)
}

// stagedDir returns the directory of staged call v (nb entries of bucket
// u16 | end u32) and the offset of its first chunk.
func stagedDir(v []byte) (dir []byte, start int, err error) {
	if len(v) < 2 || v[0] != codecV1 {
		return nil, 0, errCorrupt
	}
	nb, n := binary.Uvarint(v[1:])
	if n <= 0 || nb > objectBuckets {
		return nil, 0, errCorrupt
	}
	start = 1 + n + objDirEntryLen*int(nb)
	if start > len(v) {
		return nil, 0, errCorrupt
	}
	return v[1+n : start], start, nil
}

// forStagedChunks calls fn with every bucket and chunk of staged call v,
// in bucket order, after checking the directory.
func forStagedChunks(v []byte, fn func(b uint16, chunk []byte)) error {
	dir, start0, err := stagedDir(v)
	if err != nil {
		return err
	}
	prev, start := -1, start0
	for i := 0; i < len(dir); i += objDirEntryLen {
		b := int(binary.BigEndian.Uint16(dir[i:]))
		end := int(binary.BigEndian.Uint32(dir[i+2:]))
		if b <= prev || b >= objectBuckets || end <= start || end > len(v) {
			return errCorrupt
		}
		prev = b
		start = end
	}
	if start != len(v) {
		return errCorrupt
	}
	start = start0
	for i := 0; i < len(dir); i += objDirEntryLen {
		end := int(binary.BigEndian.Uint32(dir[i+2:]))
		fn(binary.BigEndian.Uint16(dir[i:]), v[start:end])
		start = end
	}
	return nil
}

// stagedChunk returns bucket's chunk of staged call v, if it has one.
func stagedChunk(v []byte, bucket uint16) (chunk []byte, ok bool, err error) {
	dir, start, err := stagedDir(v)
	if err != nil {
		return nil, false, err
	}
	nb := len(dir) / objDirEntryLen
	lo, hi := 0, nb
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if binary.BigEndian.Uint16(dir[m*objDirEntryLen:]) < bucket {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == nb || binary.BigEndian.Uint16(dir[lo*objDirEntryLen:]) != bucket {
		return nil, false, nil
	}
	if lo > 0 {
		start = int(binary.BigEndian.Uint32(dir[(lo-1)*objDirEntryLen+2:]))
	}
	end := int(binary.BigEndian.Uint32(dir[lo*objDirEntryLen+2:]))
	if start > end || end > len(v) {
		return nil, false, errCorrupt
	}
	return v[start:end], true, nil
}

// forRunChunks calls fn with every call identity and chunk of run chunk v.
func forRunChunks(v []byte, fn func(id, chunk []byte) error) error {
	if len(v) < 1 || v[0] != codecV1 {
		return errCorrupt
	}
	v = v[1:]
	for len(v) > 0 {
		if len(v) < objCallIDLen+1 {
			return errCorrupt
		}
		n, k := binary.Uvarint(v[objCallIDLen:])
		if k <= 0 || n > uint64(len(v)-objCallIDLen-k) {
			return errCorrupt
		}
		body := v[objCallIDLen+k:]
		if err := fn(v[:objCallIDLen], body[:n]); err != nil {
			return err
		}
		v = body[n:]
	}
	return nil
}

// objectLookup is the state of one Store.Object call.
type objectLookup struct {
	s        *Store
	r        Reader
	objectID string
	bucket   uint16
	after    *objectPos // the cursor: keep only events after it
	evs      []objectEv
	hits     []objectHit
	idBuf    []byte
	datasets map[[ulidLen]byte]string // tx -> dataset join cache
}

// addChunk adds the events of the object in chunk, recorded on day by the
// call with identity id (ms u32 | ulid | row u32 | stage u8).
func (q *objectLookup) addChunk(day uint32, id, chunk []byte) error {
	hits, idBuf, dsb, hasDs, err := scanObjectChunk(chunk, q.objectID, q.hits[:0], q.idBuf)
	q.hits, q.idBuf = hits, idBuf
	if err != nil || len(hits) == 0 {
		return err
	}
	pos := objectPos{day: day, ms: binary.BigEndian.Uint32(id)}
	copy(pos.tx[:], id[4:])
	ds := string(dsb)
	if !hasDs {
		if ds, err = q.s.txDataset(q.r, pos.tx, q.datasets); err != nil {
			return err
		}
	}
	t := time.UnixMilli(int64(day)*secsPerDay*1000 + int64(pos.ms)).UTC()
	var tx string
	for _, h := range hits {
		pos.row, pos.stage = h.row, h.stage.code()
		if q.after != nil && pos.compare(q.after) <= 0 {
			continue
		}
		if tx == "" {
			tx = formatULID(pos.tx)
		}
		q.evs = append(q.evs, objectEv{pos: pos, ev: ObjectEvent{ObjectID: q.objectID, Time: t,
			TxID: tx, Dataset: ds, Row: int(h.row), Stage: h.stage,
			Outcome: h.outcome, Field: h.field, Reason: h.reason}})
	}
	return nil
}

// firstDay returns the first day >= day of object table t under prefix p
// that holds a key, positioning it there.
func (q *objectLookup) firstDay(it *pebble.Iterator, p, t byte, day uint32) (uint32, bool, error) {
	if !it.SeekGE(objDay(p, t, day)) {
		return 0, false, it.Error()
	}
	k := it.Key()
	if len(k) < objDayPrefixLen {
		return 0, false, errCorrupt
	}
	return binary.BigEndian.Uint32(k[2:]), true, nil
}

// runs adds the object's events of every run of day under prefix p: one
// seek per run to (day, run, bucket).
func (q *objectLookup) runs(ctx context.Context, it *pebble.Iterator, p byte, day uint32) error {
	prefix := objDay(p, tableObjRun, day)
	var run uint32
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !it.SeekGE(objRun(p, day, run, q.bucket)) {
			return it.Error()
		}
		k := it.Key()
		if !bytes.HasPrefix(k, prefix) {
			return nil
		}
		if len(k) != objRunKeyLen {
			return errCorrupt
		}
		kr, kb := binary.BigEndian.Uint32(k[objDayPrefixLen:]), binary.BigEndian.Uint16(k[objDayPrefixLen+4:])
		if kr != run && kb < q.bucket {
			run = kr // a later run: seek to its bucket
			continue
		}
		if kb == q.bucket {
			v, err := it.ValueAndErr()
			if err != nil {
				return err
			}
			if err := forRunChunks(v, func(id, chunk []byte) error { return q.addChunk(day, id, chunk) }); err != nil {
				return err
			}
		}
		if kr == 1<<32-1 {
			return nil
		}
		run = kr + 1
	}
}

// staged adds the object's events of every staged call of day.
func (q *objectLookup) staged(ctx context.Context, it *pebble.Iterator, day uint32) error {
	prefix := objDay(q.s.k.p, tableObjStage, day)
	for ok := it.SeekGE(prefix); ok && bytes.HasPrefix(it.Key(), prefix); ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := it.Key()
		if len(k) != objStageKeyLen {
			return errCorrupt
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		chunk, found, err := stagedChunk(v, q.bucket)
		if err != nil {
			return err
		}
		if found {
			if err := q.addChunk(day, k[objDayPrefixLen:], chunk); err != nil {
				return err
			}
		}
	}
	return it.Error()
}
