package cluster

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/demandflow/demandflow/cluster/internal/yield"
)

// Observation storage: staged blocks folded into per-series chunks.
//
// Apply does not write one key per observation. Each validated record of an
// ingest part becomes ONE staged block: its rows sorted by (series,
// period), duplicates of a (series, period) resolved by the dataset's
// policy, grouped per series. The block is held in memory only, with a
// pending key for its entry (see "Volatile blocks" below; table
// prefixStaged holds blocks only when persisted at Close or for a Raft
// snapshot). A background folder regularly takes every pending block,
// merges the groups of each series in block order into one chunk, and
// writes it as a Pebble Merge operand of the series' single chunk key
// (table prefixChunk), deleting the pending keys (and persisted blocks) in
// the same batch. Pebble's merge operator (chunkValueMerger) combines a
// series' operands on reads and compactions.
//
// Why: the ingest benchmarks write period-major batches (every series gets
// one or two observations per batch), so one key per observation made the
// memtable inserts and the compaction of billions of tiny keys the node's
// largest CPU cost. A fold of half a million rows over ~16,000 series writes
// 16,000 keys instead.
//
// Reads (Observations, History) see: legacy per-observation keys (table
// prefixObservation, written by versions before this layout; read-only now)
// as the oldest layer, then the series' chunk, then the series' groups in
// the still pending blocks, in apply order. The pending blocks are in
// memory (about 25 bytes per row); after a restart or a snapshot restore
// they come back from the staged table and, for entries with pending keys,
// from the replayed Raft log.
//
// Determinism: apply writes the same pending keys (and stages the same
// blocks) on every node. Folding is
// local and runs at different times on different nodes, but it never
// changes what a read returns, and chunk merging is canonical (sorted,
// one entry per period), so two stores that folded everything hold the same
// bytes whatever the grouping of their folds. Only float sums under the
// "sum" policy may differ in the last bits (as with the legacy layout).
//
// Chunk bodies: entries sorted by period, one per period:
//
//	period u32 (biased) | value length uvarint | observation value (see appendObsValue)
//
// The value's flags bit obsFlagSum marks an entry that adds its measure to
// the older value of the same period ("sum" policy); without it the entry
// replaces the older value ("last"). Merging older o with newer n for one
// period: n without the bit -> n; n with the bit -> n's fields, measure
// o+n, and o's sum bit (the combination adds to older values exactly when o
// did). That rule is associative, so Pebble may group operands freely.
//
// Staged block value: blockVersion | per series, ascending: series id u64 |
// body length u32 | chunk body. Chunk value: chunkVersion | chunk body.
//
// # Volatile blocks
//
// Apply keeps a new block in memory only and writes a pending key (table
// prefixStagedPending: Raft index -> dataset id) instead of the block.
// Why: the block was written to the memtable, deleted by the fold a moment
// later, and flushed in between whenever a memtable filled; that copy,
// its tombstone and those flushes were 7-13% of a node's CPU under ingest
// (bench/RESULTS.md, "Session 2026-12-06 17:22-19:20").
//
// Durability comes from the Raft log instead, as for the object index's
// staged calls (tracking.Config.VolatileStaging):
//   - A fold deletes the pending keys up to the newest entry it folded,
//     in the batch that writes the chunks, so in any durable state a
//     pending key exists exactly for the applied entries not yet folded.
//   - After a restart Raft replays the entries from its last snapshot;
//     ApplyBatch skips those at or below the applied index, and for each
//     one with a pending key stages its blocks again (restageObservations),
//     in apply order. Until it has passed the newest pending key, reads of
//     observations (Observations, History: the API and forecast fits) wait,
//     and answer ErrReplaying after replayWait (replayGate).
//   - Before Raft takes a snapshot, and at Close, persistVolatile writes
//     the volatile blocks into the staged table and deletes every pending
//     key. A snapshot then carries them (a follower installing it has no
//     log to restage from, and Raft may truncate the log below it), and
//     they are reloaded on open like blocks of earlier versions. Not
//     while the replay is still short of a pending key: a snapshot is
//     then refused (Raft retries it later) and Close leaves the keys for
//     the next replay, since deleting them would lose the blocks of the
//     entries not yet replayed.
//   - Ingest parts' dirty marks follow the same scheme (fsm_dirty.go).
//   - A dataset dropped with pending blocks leaves pending keys behind;
//     a restage skips entries of datasets that no longer exist, and the
//     first fold past them, or persistVolatile, deletes the keys.

// obsFlagSum marks a chunk entry that adds to the older value of its period.
const obsFlagSum = 0x02

const (
	blockVersion byte = 1
	chunkVersion byte = 1
)

// Defaults of the folder (StoreConfig).
const (
	DefaultFoldRows      = 1 << 17
	DefaultFoldInterval  = time.Second
	DefaultMaxStagedRows = 8 << 20
)

func stagedKey(dsid uint32, index uint64, rec uint32) []byte {
	k := dsPrefix(prefixStaged, dsid)
	k = binary.BigEndian.AppendUint64(k, index)
	return binary.BigEndian.AppendUint32(k, rec)
}

// stagedIndex returns the Raft index in a staged block key.
func stagedIndex(key []byte) uint64 { return binary.BigEndian.Uint64(key[5:13]) }

// stagedPendingKey marks the ingest entry at index as having staged
// blocks in memory only.
func stagedPendingKey(index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixStagedPending}, index)
}

func chunkKey(dsid uint32, sid uint64) []byte {
	return binary.BigEndian.AppendUint64(dsPrefix(prefixChunk, dsid), sid)
}

// stagedBlock is one pending block, decoded for reads and folding.
type stagedBlock struct {
	dsid uint32
	key  []byte
	rows int
	// val is the block's encoded value (bodies point into it). volatile
	// blocks are in memory only (not in Pebble); a pending key marks
	// their Raft entry (see "Volatile blocks"). Both change only under
	// stage.foldMu, which persistVolatile and folds hold.
	val      []byte
	volatile bool
	// sids are the block's series, ascending; offs[i] is where the chunk
	// body of sids[i] starts in val (bodyAt). Offsets, not sub-slices: a
	// block indexes one series per row of a period-major feed, and 4
	// bytes without pointers each cost a fifth of a slice header's
	// allocation and nothing to the GC's scan while the block waits for
	// its fold.
	sids []uint64
	offs []uint32
}

// bodyAt returns the chunk body of the block's i-th series (a sub-slice
// of val; its length is the group header's last 4 bytes, just before it).
func (b *stagedBlock) bodyAt(i int) []byte {
	start := int(b.offs[i])
	end := start + int(binary.BigEndian.Uint32(b.val[start-4:start]))
	return b.val[start:end:end]
}

// body returns the chunk body of series sid in b, or nil.
func (b *stagedBlock) body(sid uint64) []byte {
	i, ok := slices.BinarySearch(b.sids, sid)
	if !ok {
		return nil
	}
	return b.bodyAt(i)
}

// decodeStagedBlock indexes a staged block value; rows are counted.
func decodeStagedBlock(dsid uint32, key, v []byte) (*stagedBlock, error) {
	if len(v) == 0 || v[0] != blockVersion {
		return nil, fmt.Errorf("staged block %x: unknown version", key)
	}
	b := &stagedBlock{dsid: dsid, key: key, val: v}
	rest := v[1:]
	for len(rest) > 0 {
		if len(rest) < 12 {
			return nil, fmt.Errorf("staged block %x: truncated group", key)
		}
		sid := binary.BigEndian.Uint64(rest)
		n := int(binary.BigEndian.Uint32(rest[8:]))
		rest = rest[12:]
		if n > len(rest) {
			return nil, fmt.Errorf("staged block %x: truncated body of series %016x", key, sid)
		}
		if k := len(b.sids); k > 0 && b.sids[k-1] >= sid {
			return nil, fmt.Errorf("staged block %x: series out of order", key)
		}
		body := rest[:n:n]
		rows, ok := countChunkEntries(body)
		if !ok {
			return nil, fmt.Errorf("staged block %x: corrupt body of series %016x", key, sid)
		}
		b.sids = append(b.sids, sid)
		b.offs = append(b.offs, uint32(len(v)-len(rest)))
		b.rows += rows
		rest = rest[n:]
	}
	return b, nil
}

// chunkEntry is one decoded chunk entry; val aliases the body.
type chunkEntry struct {
	period uint32 // biased
	val    []byte
}

// nextChunkEntry decodes the first entry of body and returns the rest.
func nextChunkEntry(body []byte) (e chunkEntry, rest []byte, ok bool) {
	if len(body) < 5 {
		return e, nil, false
	}
	e.period = binary.BigEndian.Uint32(body)
	l, k := binary.Uvarint(body[4:])
	if k <= 0 || uint64(len(body)-4-k) < l || l < 10 {
		return e, nil, false
	}
	start := 4 + k
	e.val = body[start : start+int(l) : start+int(l)]
	return e, body[start+int(l):], true
}

// lastChunkPeriod returns the (biased) period of body's last entry; body
// must not be empty.
func lastChunkPeriod(body []byte) (uint32, bool) {
	var last uint32
	for len(body) > 0 {
		if len(body) < 5 {
			return 0, false
		}
		last = binary.BigEndian.Uint32(body)
		l, k := binary.Uvarint(body[4:])
		if k <= 0 || uint64(len(body)-4-k) < l || l < 10 {
			return 0, false
		}
		body = body[4+k+int(l):]
	}
	return last, true
}

func countChunkEntries(body []byte) (int, bool) {
	n := 0
	for len(body) > 0 {
		var ok bool
		if _, body, ok = nextChunkEntry(body); !ok {
			return 0, false
		}
		n++
	}
	return n, true
}

func appendChunkEntry(dst []byte, period uint32, val []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, period)
	dst = binary.AppendUvarint(dst, uint64(len(val)))
	return append(dst, val...)
}

// appendCombined appends the entry for one period with older value o and
// newer value n (see the merge rule above).
func appendCombined(dst []byte, period uint32, o, n []byte) []byte {
	if n[0]&obsFlagSum == 0 {
		return appendChunkEntry(dst, period, n)
	}
	dst = binary.BigEndian.AppendUint32(dst, period)
	dst = binary.AppendUvarint(dst, uint64(len(n)))
	at := len(dst)
	dst = append(dst, n...)
	dst[at] = n[0]&^obsFlagSum | o[0]&obsFlagSum
	sum := math.Float64frombits(binary.BigEndian.Uint64(o[1:9])) + math.Float64frombits(binary.BigEndian.Uint64(n[1:9]))
	binary.BigEndian.PutUint64(dst[at+1:], math.Float64bits(sum))
	return dst
}

// errCorruptChunk reports a chunk body that does not decode.
var errCorruptChunk = errors.New("corrupt chunk")

// mergeChunkBodies appends the merge of chunk bodies older and newer to dst.
// Entries only one side has are copied verbatim; the tails are not
// validated (decoding them later is).
func mergeChunkBodies(dst, older, newer []byte) ([]byte, error) {
	// Most merges append: ingest moves forward in time, so every newer
	// entry is after every older one (folds of period-major batches,
	// compactions of a series' chunk with later operands). Then both
	// sides are copied whole, instead of entry by entry with both
	// decoded; finding older's last period only reads the entry headers.
	if len(older) > 0 && len(newer) > 0 {
		last, ok := lastChunkPeriod(older)
		n, _, ok2 := nextChunkEntry(newer)
		if !ok || !ok2 {
			return dst, errCorruptChunk
		}
		if last < n.period {
			return append(append(dst, older...), newer...), nil
		}
	}
	for len(older) > 0 && len(newer) > 0 {
		o, orest, ok1 := nextChunkEntry(older)
		n, nrest, ok2 := nextChunkEntry(newer)
		if !ok1 || !ok2 {
			return dst, errCorruptChunk
		}
		switch {
		case o.period < n.period:
			dst = append(dst, older[:len(older)-len(orest)]...)
			older = orest
		case n.period < o.period:
			dst = append(dst, newer[:len(newer)-len(nrest)]...)
			newer = nrest
		default:
			dst = appendCombined(dst, o.period, o.val, n.val)
			older, newer = orest, nrest
		}
	}
	dst = append(dst, older...)
	return append(dst, newer...), nil
}

// chunkValueMerger combines the merge operands of one chunk key. Mergers
// are pooled: Finish hands Pebble the merged value with the merger as its
// io.Closer, and Pebble closes it when it no longer reads the value, which
// returns the merger and its buffers to the pool. (Compactions and reads
// of chunk keys create one merger per key; unpooled, their buffers were a
// third of the store's allocations.)
type chunkValueMerger struct {
	// acc is the merged value so far, with its version byte; scratch is
	// the other buffer of a merge.
	acc, scratch []byte
}

var chunkMergers = sync.Pool{New: func() any { return new(chunkValueMerger) }}

// Background work yields the CPU to request handling (package yield): a
// compaction every mergeYieldPeriod chunk merges, a fold every
// foldYieldPeriod series. Both are well under a millisecond of work.
const (
	mergeYieldPeriod = 256
	foldYieldPeriod  = 512
)

// mergeYield counts chunk merges across compactions: the merge operator
// keeps no state between keys. Reads merge operands too; one of them
// yields at most once per mergeYieldPeriod merges, a scheduling turn.
var mergeYield yield.Counter

func newChunkValueMerger(value []byte) (*chunkValueMerger, error) {
	if len(value) == 0 || value[0] != chunkVersion {
		return nil, fmt.Errorf("cluster: bad chunk operand of %d bytes", len(value))
	}
	m := chunkMergers.Get().(*chunkValueMerger)
	m.acc = append(m.acc[:0], value...)
	return m, nil
}

func (m *chunkValueMerger) merge(older, newer []byte) error {
	out, err := mergeChunkBodies(append(m.scratch[:0], chunkVersion), older, newer)
	if err != nil {
		return fmt.Errorf("cluster: chunk merge: %w", err)
	}
	m.acc, m.scratch = out, m.acc
	return nil
}

func (m *chunkValueMerger) MergeNewer(value []byte) error {
	mergeYield.Tick(mergeYieldPeriod)
	if len(value) == 0 || value[0] != chunkVersion {
		return fmt.Errorf("cluster: bad chunk operand of %d bytes", len(value))
	}
	return m.merge(m.acc[1:], value[1:])
}

func (m *chunkValueMerger) MergeOlder(value []byte) error {
	mergeYield.Tick(mergeYieldPeriod)
	if len(value) == 0 || value[0] != chunkVersion {
		return fmt.Errorf("cluster: bad chunk operand of %d bytes", len(value))
	}
	return m.merge(value[1:], m.acc[1:])
}

// Finish returns the merged value, valid until Pebble closes the merger.
func (m *chunkValueMerger) Finish(bool) ([]byte, io.Closer, error) {
	return m.acc, m, nil
}

// maxPooledMerger is the largest buffer a pooled merger keeps.
const maxPooledMerger = 1 << 20

// Close returns m to the pool; Pebble calls it when it is done with the
// value Finish returned.
func (m *chunkValueMerger) Close() error {
	if cap(m.acc) > maxPooledMerger || cap(m.scratch) > maxPooledMerger {
		return nil // an unusually large chunk: let the GC have it
	}
	m.acc, m.scratch = m.acc[:0], m.scratch[:0]
	chunkMergers.Put(m)
	return nil
}

// stage is the set of pending staged blocks of a store.
//
// Two locks, so that a fold's commit never holds up an apply:
//   - mu orders folds (and drops) against reads. Readers hold it shared
//     while they read a series (chunk and pending blocks must be one
//     consistent view); a fold holds it exclusively while it commits and
//     removes its blocks, so a reader sees a block either pending or
//     folded, never both or neither.
//   - pubMu guards the pending list itself. An apply publishes its blocks
//     under pubMu alone: a block published during a fold's commit is not
//     one the fold took, so the reader's view stays consistent.
//
// The list is copy-on-write: a reader's snapshot (pending) stays valid
// while blocks are appended or removed.
type stage struct {
	// mu: see above. It also guards gen.
	mu sync.RWMutex
	// gen changes whenever pending blocks are dropped other than by a fold
	// (dataset deletion, snapshot restore); a fold started under another
	// generation discards its work.
	gen uint64

	// pubMu guards blocks, rows and closed.
	pubMu  sync.Mutex
	blocks []*stagedBlock // in apply order; never modified in place
	rows   int
	// drained is signalled (with pubMu) when a fold removed blocks, for
	// an apply waiting on MaxStagedRows.
	drained *sync.Cond

	wake chan struct{} // nudges the folder
	stop chan struct{}
	done chan struct{}
	// foldMu serialises folds (the folder and foldStaged callers).
	foldMu sync.Mutex
	// fold is the folds' scratch memory (guarded by foldMu): a fold of
	// 131,072 rows sorts that many series entries.
	fold   foldScratch
	closed bool // guarded by pubMu
}

// pending returns the pending blocks as of now. The caller holds mu
// (shared is enough) so that no fold removes blocks while it reads them.
func (st *stage) pending() []*stagedBlock {
	st.pubMu.Lock()
	defer st.pubMu.Unlock()
	return st.blocks
}

func newStage() *stage {
	st := &stage{wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	st.drained = sync.NewCond(&st.pubMu)
	return st
}

func (st *stage) nudge() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// startFolder runs the background folder until closeFolder.
func (s *Store) startFolder() {
	go func() {
		defer close(s.stage.done)
		t := time.NewTicker(s.cfg.FoldInterval)
		defer t.Stop()
		for {
			select {
			case <-s.stage.stop:
				return
			case <-s.stage.wake:
				s.stage.pubMu.Lock()
				rows := s.stage.rows
				s.stage.pubMu.Unlock()
				if rows < s.cfg.FoldRows {
					continue
				}
			case <-t.C:
			}
			if err := s.foldStaged(); err != nil {
				s.logger.Error("fold staged observations", "err", err)
			}
		}
	}()
}

// closeFolder stops the folder and releases appliers waiting for it.
func (s *Store) closeFolder() {
	st := s.stage
	st.pubMu.Lock()
	st.closed = true
	st.drained.Broadcast()
	st.pubMu.Unlock()
	close(st.stop)
	<-st.done
}

// foldCommitted, when set (tests only), runs after a fold's commit and
// before its blocks leave the pending list.
var foldCommitted func()

// foldStaged folds every pending block into the chunks.
func (s *Store) foldStaged() error {
	st := s.stage
	st.foldMu.Lock()
	defer st.foldMu.Unlock()
	st.mu.RLock()
	gen := st.gen
	blocks := slices.Clone(st.pending())
	st.mu.RUnlock()
	if len(blocks) == 0 {
		return nil
	}
	picked := len(blocks) // the head of st.blocks this fold removes
	// Fold each dataset's blocks together, in apply order.
	slices.SortStableFunc(blocks, func(a, b *stagedBlock) int { return cmp.Compare(a.dsid, b.dsid) })
	size := 0
	for _, blk := range blocks {
		size += len(blk.key) + 16
		size += len(blk.val) + 20*len(blk.offs)
	}
	b := s.foldBatch.Take(s.db, size, maxKeptBatch)
	defer s.foldBatch.Keep(b)
	rows := 0
	for lo := 0; lo < len(blocks); {
		hi := lo
		for hi < len(blocks) && blocks[hi].dsid == blocks[lo].dsid {
			hi++
		}
		if err := foldDataset(b, blocks[lo:hi], &st.fold); err != nil {
			return err
		}
		lo = hi
	}
	var maxVolatile uint64
	anyVolatile := false
	for _, blk := range blocks {
		rows += blk.rows
		if blk.volatile {
			anyVolatile = true
			maxVolatile = max(maxVolatile, stagedIndex(blk.key))
			continue
		}
		if err := b.Delete(blk.key, nil); err != nil {
			return err
		}
	}
	if anyVolatile {
		// Every entry up to the newest folded one had its blocks
		// published before this fold took the pending list (publishing
		// follows apply order), so all of them are folded here.
		if err := b.DeleteRange(stagedPendingKey(0), stagedPendingKey(maxVolatile+1), nil); err != nil {
			return err
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.pubMu.Lock()
	closed := st.closed
	st.pubMu.Unlock()
	if st.gen != gen || closed {
		return nil // dropped under us (dataset deleted, restore, close)
	}
	// Applies go on publishing meanwhile (pubMu); only folds and drops
	// remove blocks, and they hold mu, so the blocks folded are still the
	// head of the pending list.
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("commit fold: %w", err)
	}
	if foldCommitted != nil {
		foldCommitted()
	}
	st.pubMu.Lock()
	st.blocks = slices.Clone(st.blocks[picked:])
	st.rows -= rows
	st.drained.Broadcast()
	st.pubMu.Unlock()
	return nil
}

// foldScratch is the memory foldDataset reuses from one dataset (and
// fold) to the next.
type foldScratch struct {
	acc, tmp, val []byte
	ents          []foldEnt
	counts        []int32
}

// foldEnt is one block's body of one series in a fold.
type foldEnt struct {
	sid      uint64
	blk, pos int32
}

// foldDataset writes one Merge per series of blocks (one dataset, apply
// order), series ascending.
func foldDataset(b *pebble.Batch, blocks []*stagedBlock, fs *foldScratch) error {
	dsid := blocks[0].dsid
	ents := fs.bySeries(blocks)
	key := chunkKey(dsid, 0)
	acc, tmp, val := fs.acc, fs.tmp, fs.val
	defer func() { fs.acc, fs.tmp, fs.val = acc, tmp, val }()
	var work uint32
	for i := 0; i < len(ents); {
		yield.Every(&work, foldYieldPeriod)
		sid := ents[i].sid
		j := i + 1
		for j < len(ents) && ents[j].sid == sid {
			j++
		}
		group := ents[i:j]
		i = j
		acc = append(acc[:0], blocks[group[0].blk].bodyAt(int(group[0].pos))...)
		// last is acc's last period, so that the usual append (see
		// mergeChunkBodies) does not walk acc again for every block.
		last, ok := lastChunkPeriod(acc)
		for _, c := range group[1:] {
			body := blocks[c.blk].bodyAt(int(c.pos))
			if first, rest, fok := nextChunkEntry(body); ok && fok && last < first.period {
				acc = append(acc, body...)
				// Period-major ingest stages one entry per series:
				// then the entry just read is the last.
				if last = first.period; len(rest) > 0 {
					last, ok = lastChunkPeriod(rest)
				}
				continue
			}
			var err error
			tmp, err = mergeChunkBodies(tmp[:0], acc, body)
			if err != nil {
				return fmt.Errorf("fold series %016x: %w", sid, err)
			}
			acc, tmp = tmp, acc
			last, ok = lastChunkPeriod(acc)
		}
		if !ok {
			return fmt.Errorf("fold series %016x: %w", sid, errCorruptChunk)
		}
		val = append(append(val[:0], chunkVersion), acc...)
		binary.BigEndian.PutUint64(key[5:], sid)
		if err := b.Merge(key, val, nil); err != nil {
			return err
		}
	}
	return nil
}

// bySeries returns the (series, block, body) of every block's series
// ordered by series id, then block (apply order): a counting sort on the
// ids' top bits (sidbuckets.go), then per bucket an insertion sort, or a
// comparison sort past 32 entries. A k-way heap merge of the blocks'
// sorted lists cost four times as much (6% of a node's CPU).
func (fs *foldScratch) bySeries(blocks []*stagedBlock) []foldEnt {
	n := 0
	for _, blk := range blocks {
		n += len(blk.sids)
	}
	shift, counts := sidBuckets(n, 24, fs.counts)
	fs.counts = counts
	for _, blk := range blocks {
		for _, sid := range blk.sids {
			counts[sid>>shift+1]++
		}
	}
	bucketStarts(counts)
	if cap(fs.ents) < n {
		fs.ents = make([]foldEnt, n)
	}
	ents := fs.ents[:n]
	// Blocks in order, so each bucket holds a series' bodies in apply
	// order already; the sorts below keep it (the block breaks ties).
	for bi, blk := range blocks {
		for pos, sid := range blk.sids {
			k := sid >> shift
			ents[counts[k]] = foldEnt{sid: sid, blk: int32(bi), pos: int32(pos)}
			counts[k]++
		}
	}
	sortBuckets(ents, counts, 32, insertionSortFoldEnts, func(e []foldEnt) { slices.SortFunc(e, compareFoldEnts) })
	return ents
}

// insertionSortFoldEnts sorts a few entries by series id, stably.
func insertionSortFoldEnts(e []foldEnt) {
	for i := 1; i < len(e); i++ {
		x := e[i]
		j := i
		for ; j > 0 && e[j-1].sid > x.sid; j-- {
			e[j] = e[j-1]
		}
		e[j] = x
	}
}

func compareFoldEnts(a, b foldEnt) int {
	if c := cmp.Compare(a.sid, b.sid); c != 0 {
		return c
	}
	return cmp.Compare(a.blk, b.blk)
}

// loadStaged reloads the pending blocks from Pebble (open, restore).
func (s *Store) loadStaged() error {
	var blocks []*stagedBlock
	rows := 0
	err := s.scan(context.Background(), []byte{prefixStaged}, []byte{prefixStaged + 1}, func(k, v []byte) (bool, error) {
		if len(k) != 17 {
			return false, fmt.Errorf("staged block key %x has a bad length", k)
		}
		blk, err := decodeStagedBlock(binary.BigEndian.Uint32(k[1:5]), bytes.Clone(k), bytes.Clone(v))
		if err != nil {
			return false, err
		}
		blocks = append(blocks, blk)
		rows += blk.rows
		return true, nil
	})
	if err != nil {
		return err
	}
	// Keys sort by dataset, then Raft index: apply order within a
	// dataset, which is all folds and reads need.
	legacy := false
	if err := s.scan(context.Background(), []byte{prefixObservation}, []byte{prefixObservation + 1}, func(_, _ []byte) (bool, error) {
		legacy = true
		return false, nil
	}); err != nil {
		return err
	}
	st := s.stage
	st.mu.Lock()
	st.pubMu.Lock()
	st.blocks, st.rows = blocks, rows
	st.pubMu.Unlock()
	st.gen++
	s.legacyObs.Store(legacy)
	st.mu.Unlock()
	if rows > 0 {
		st.nudge()
	}
	return nil
}

// dropStaged forgets the pending blocks of the given datasets (all when
// dsids is nil) and invalidates running folds; the caller holds stage.mu
// exclusively.
func (st *stage) dropLocked(dsids map[uint32]bool) {
	st.gen++
	st.pubMu.Lock()
	defer st.pubMu.Unlock()
	if dsids == nil {
		st.blocks, st.rows = nil, 0
	} else {
		kept := make([]*stagedBlock, 0, len(st.blocks))
		for _, b := range st.blocks {
			if dsids[b.dsid] {
				st.rows -= b.rows
				continue
			}
			kept = append(kept, b)
		}
		st.blocks = kept
	}
	st.drained.Broadcast()
}

// replayGate holds reads of observations and dirty marks back after a
// restart until the Raft replay has staged again every entry with a
// pending key (see "Volatile blocks", and fsm_dirty.go): until then the
// applied index covers rows that no read could see, and a forecast fitted
// meanwhile would miss them. Snapshots and Close do not persist what is
// in memory until the replay has also passed the newest entry with an
// object-index pending key (persistUntil; replaying): reads do not wait
// for those, since a clean Close leaves them behind.
type replayGate struct {
	mu           sync.Mutex
	until        uint64        // newest pending entry reads wait for; 0 when open
	done         chan struct{} // closed when open
	persistUntil uint64        // newest pending entry of any kind; 0 when passed
}

// armReplayAfterLoad arms the replay gate (Store.load): reads wait for
// the newest entry whose staged blocks or dirty marks (dirty: the newest
// dirty pending part, loadDirty) only the Raft log holds, and persisting
// also for the newest with object-index calls (tracking pending keys).
func (s *Store) armReplayAfterLoad(dirty uint64) error {
	newest := func(prefix byte) (uint64, error) {
		var n uint64
		err := s.scan(context.Background(), []byte{prefix}, []byte{prefix + 1}, func(k, _ []byte) (bool, error) {
			if len(k) != 9 {
				return false, fmt.Errorf("pending key %x has a bad length", k)
			}
			n = max(n, binary.BigEndian.Uint64(k[1:]))
			return true, nil
		})
		return n, err
	}
	staged, err := newest(prefixStagedPending)
	if err != nil {
		return err
	}
	objects, err := newest(prefixTrackPending)
	if err != nil {
		return err
	}
	s.armReplay(max(dirty, staged), objects)
	return nil
}

// replayWait bounds how long a read waits for the replay before it
// answers ErrReplaying.
const replayWait = 10 * time.Second

// armReplay closes the gate until the entry at index until is replayed
// (open at once for 0), and holds persisting back until the entry at
// max(until, persistUntil) is.
func (s *Store) armReplay(until, persistUntil uint64) {
	g := &s.replay
	g.mu.Lock()
	defer g.mu.Unlock()
	g.persistUntil = max(until, persistUntil)
	// Invariant after the first call: until == 0 exactly when done is
	// closed.
	open := g.done != nil && g.until == 0
	switch {
	case g.done == nil:
		g.done = make(chan struct{})
		if until == 0 {
			close(g.done)
		}
	case until == 0 && !open:
		close(g.done) // a restore replaced what the replay was for
	case until != 0 && open:
		g.done = make(chan struct{})
	}
	g.until = until
}

// noteReplayed records that the FSM has been given every entry up to
// index (applied, or staged again when it was applied before).
func (s *Store) noteReplayed(index uint64) {
	g := &s.replay
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.until != 0 && index >= g.until {
		g.until = 0
		close(g.done)
	}
	if index >= g.persistUntil {
		g.persistUntil = 0
	}
}

// replaying reports whether the replay after a restart is still short of
// an entry with a pending key of any kind: what memory holds is not
// complete yet, and persisting it would drop the keys of the rest.
func (s *Store) replaying() bool {
	g := &s.replay
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.until != 0 || g.persistUntil != 0
}

// waitReplayed returns once observation reads are complete, or
// ErrReplaying after replayWait (or when ctx ends first).
func (s *Store) waitReplayed(ctx context.Context) error {
	g := &s.replay
	g.mu.Lock()
	done := g.done
	g.mu.Unlock()
	select {
	case <-done:
		return nil
	default:
	}
	t := time.NewTimer(replayWait)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return ErrReplaying
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrReplaying, ctx.Err())
	}
}

// persistVolatile writes the volatile pending blocks into the staged
// table and deletes every pending key, in one batch (see "Volatile
// blocks"). It holds foldMu, so no fold runs meanwhile. Callers: FSM
// snapshots (on the apply goroutine) and Close (after the folder stopped).
func (s *Store) persistVolatile() error {
	st := s.stage
	st.foldMu.Lock()
	defer st.foldMu.Unlock()
	st.mu.RLock()
	blocks := slices.Clone(st.pending())
	st.mu.RUnlock()
	b := s.db.NewBatch()
	defer b.Close()
	var persisted []*stagedBlock
	for _, blk := range blocks {
		if !blk.volatile {
			continue
		}
		if err := b.Set(blk.key, blk.val, nil); err != nil {
			return err
		}
		persisted = append(persisted, blk)
	}
	if err := b.DeleteRange([]byte{prefixStagedPending}, []byte{prefixStagedPending + 1}, nil); err != nil {
		return err
	}
	if err := b.Commit(s.wo); err != nil {
		return fmt.Errorf("persist staged blocks: %w", err)
	}
	for _, blk := range persisted {
		blk.volatile = false
	}
	return nil
}

// publishStaged makes the blocks of a committed apply batch visible to
// reads and the folder, then waits while more than MaxStagedRows are
// pending (backpressure when folding falls behind).
func (s *Store) publishStaged(blocks []*stagedBlock) {
	if len(blocks) == 0 {
		return
	}
	st := s.stage
	st.pubMu.Lock()
	// Appending never changes what a reader's snapshot holds: it only
	// writes past the snapshot's length.
	st.blocks = append(st.blocks, blocks...)
	for _, b := range blocks {
		st.rows += b.rows
	}
	fold := st.rows >= s.cfg.FoldRows
	for st.rows > s.cfg.MaxStagedRows && !st.closed {
		st.nudge()
		st.drained.Wait()
	}
	st.pubMu.Unlock()
	if fold {
		st.nudge()
	}
}

// seriesBody returns the merged chunk body of series sid: legacy
// observations, then the chunk, then the pending blocks. The caller holds
// stage.mu shared. dst is reused.
func (s *Store) seriesBody(e *dsEntry, sid uint64, dst, tmp []byte) ([]byte, []byte, error) {
	dst = dst[:0]
	if s.legacyObs.Load() {
		var err error
		if dst, err = s.legacyBody(e, sid, dst); err != nil {
			return dst, tmp, err
		}
	}
	v, closer, err := s.db.Get(chunkKey(e.id, sid))
	switch {
	case err == nil:
		if len(v) == 0 || v[0] != chunkVersion {
			_ = closer.Close()
			return dst, tmp, fmt.Errorf("corrupt chunk of series %016x", sid)
		}
		if len(dst) == 0 {
			dst = append(dst, v[1:]...)
		} else {
			tmp, err = mergeChunkBodies(tmp[:0], dst, v[1:])
			dst, tmp = tmp, dst
		}
		_ = closer.Close()
		if err != nil {
			return dst, tmp, err
		}
	case !errors.Is(err, pebble.ErrNotFound):
		return dst, tmp, err
	}
	for _, blk := range s.stage.pending() {
		if blk.dsid != e.id {
			continue
		}
		body := blk.body(sid)
		if body == nil {
			continue
		}
		if tmp, err = mergeChunkBodies(tmp[:0], dst, body); err != nil {
			return dst, tmp, err
		}
		dst, tmp = tmp, dst
	}
	return dst, tmp, nil
}

// legacyBody appends the legacy per-observation keys of a series as a chunk
// body.
func (s *Store) legacyBody(e *dsEntry, sid uint64, dst []byte) ([]byte, error) {
	prefix := obsSeriesPrefix(e.id, sid)
	hi := binary.BigEndian.AppendUint64(dsPrefix(prefixObservation, e.id), sid+1)
	if sid == math.MaxUint64 {
		_, hi = dsRange(prefixObservation, e.id)
	}
	err := s.scan(context.Background(), prefix, hi, func(k, v []byte) (bool, error) {
		if len(v) < 10 {
			return false, fmt.Errorf("corrupt observation %x", k)
		}
		dst = appendChunkEntry(dst, binary.BigEndian.Uint32(k[len(k)-4:]), v)
		return true, nil
	})
	return dst, err
}

// blockBuilder encodes one staged block: each series' entries go straight
// into buf behind a header whose body length is filled in when the group
// closes, and the groups are indexed as they are written.
type blockBuilder struct {
	buf     []byte
	at      int // offset of the open group's header in buf
	sid     uint64
	open    bool
	rows    int
	last    uint32 // period of the pending entry
	pending []byte // value of the entry not yet appended (duplicates fold into it)
	sum     bool
	sids    []uint64
	offs    []uint32 // where each closed group's body starts in buf
}

// reset starts a block of about rows rows.
func (bb *blockBuilder) reset(sum bool, rows int) {
	if need := 1 + rows*48; cap(bb.buf) < need {
		bb.buf = make([]byte, 0, need)
	}
	bb.buf = append(bb.buf[:0], blockVersion)
	bb.open, bb.rows, bb.pending, bb.sum = false, 0, bb.pending[:0], sum
	bb.sids, bb.offs = bb.sids[:0], bb.offs[:0]
}

// add appends the observation value v of (sid, period); calls come in
// (sid, period, row) order.
func (bb *blockBuilder) add(sid uint64, period uint32, v []byte) {
	if bb.open && sid == bb.sid && period == bb.last {
		// A duplicate within the block: "last" replaces, "sum" adds.
		if bb.sum {
			sum := math.Float64frombits(binary.BigEndian.Uint64(bb.pending[1:9])) +
				math.Float64frombits(binary.BigEndian.Uint64(v[1:9]))
			bb.pending = append(bb.pending[:0], v...)
			bb.pending[0] |= obsFlagSum
			binary.BigEndian.PutUint64(bb.pending[1:], math.Float64bits(sum))
		} else {
			bb.pending = append(bb.pending[:0], v...)
		}
		return
	}
	if bb.open {
		bb.buf = appendChunkEntry(bb.buf, bb.last, bb.pending)
		if sid != bb.sid {
			bb.closeGroup()
		}
	}
	if !bb.open {
		bb.at, bb.sid, bb.open = len(bb.buf), sid, true
		bb.buf = binary.BigEndian.AppendUint64(bb.buf, sid)
		bb.buf = append(bb.buf, 0, 0, 0, 0) // body length, see closeGroup
	}
	bb.last = period
	bb.pending = append(bb.pending[:0], v...)
	if bb.sum {
		bb.pending[0] |= obsFlagSum
	}
	bb.rows++
}

func (bb *blockBuilder) closeGroup() {
	start := bb.at + 12
	binary.BigEndian.PutUint32(bb.buf[bb.at+8:], uint32(len(bb.buf)-start))
	bb.sids = append(bb.sids, bb.sid)
	bb.offs = append(bb.offs, uint32(start))
	bb.open = false
}

// finish returns the indexed block; its val is the block value (a fresh
// copy).
func (bb *blockBuilder) finish(dsid uint32, key []byte) *stagedBlock {
	if bb.open {
		bb.buf = appendChunkEntry(bb.buf, bb.last, bb.pending)
		bb.closeGroup()
	}
	return &stagedBlock{dsid: dsid, key: key, rows: bb.rows, val: bytes.Clone(bb.buf),
		sids: slices.Clone(bb.sids), offs: slices.Clone(bb.offs)}
}
