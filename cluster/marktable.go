package cluster

import "math/bits"

// markTable holds a dataset's committed dirty marks by series id: an
// open-addressing hash table with linear probing, at most half full, whose
// slots hold no pointers.
//
// publishDirty writes one mark per series an ingest part touched, so a
// period-major feed writes one per row; as a Go map of dirtyMark (whose tx
// string is a pointer) those writes were 5% of a node's CPU, and every GC
// cycle scanned the whole map. A slot is the series id and the mark's Raft
// index; the transaction ids live once per index in txs, since every mark
// of one index comes from the same entry (an ingest part, or a forced
// refresh with no transaction). Transactions no slot refers to any more
// are swept out once txs has grown well past the count the last sweep
// left (sweepTxs).
//
// Not safe for concurrent use: dirtyState.mu guards it.
type markTable struct {
	slots []markSlot // len is a power of two; sid 0 marks an empty slot
	shift uint       // 64 - log2(len(slots))
	n     int        // marks in slots
	// Series id 0 cannot live in a slot.
	zero    markSlot
	hasZero bool

	txs    map[uint64]string // non-empty tx id of each index in use
	txKept int               // len(txs) after the last sweep
}

// markSlot is one mark: the series and the index of its newest touch.
type markSlot struct{ sid, index uint64 }

const minMarkSlots = 64

// home returns sid's first slot: its top bits. Series ids are xxhash
// values (stream.SeriesID), uniform already, and this keeps their order: a
// part's sorted series fill the slots front to back, which the hardware
// prefetches (a scrambling hash made each put a cache miss). Like
// seriesSet, the table relies on that uniformity.
func (t *markTable) home(sid uint64) int {
	return int(sid >> t.shift)
}

// Len returns the number of marks.
func (t *markTable) Len() int {
	if t.hasZero {
		return t.n + 1
	}
	return t.n
}

// find returns sid's slot and true, or the empty slot where it would go
// and false. The table must have slots.
func (t *markTable) find(sid uint64) (int, bool) {
	mask := len(t.slots) - 1
	for i := t.home(sid); ; i = (i + 1) & mask {
		switch t.slots[i].sid {
		case sid:
			return i, true
		case 0:
			return i, false
		}
	}
}

// Get returns the mark of sid.
func (t *markTable) Get(sid uint64) (dirtyMark, bool) {
	var s markSlot
	switch {
	case sid == 0:
		if !t.hasZero {
			return dirtyMark{}, false
		}
		s = t.zero
	case t.n == 0:
		return dirtyMark{}, false
	default:
		i, ok := t.find(sid)
		if !ok {
			return dirtyMark{}, false
		}
		s = t.slots[i]
	}
	return dirtyMark{index: s.index, tx: t.txs[s.index]}, true
}

// Set sets the mark of sid.
func (t *markTable) Set(sid uint64, m dirtyMark) {
	t.SetTx(m.index, m.tx)
	t.Put(sid, m.index)
}

// SetTx records the transaction of the marks at index (every mark of an
// index has the same one); call it before Put.
func (t *markTable) SetTx(index uint64, tx string) {
	if tx == "" {
		return
	}
	if t.txs == nil {
		t.txs = map[uint64]string{}
	}
	if _, ok := t.txs[index]; ok {
		return
	}
	if len(t.txs) >= max(2*t.txKept, 1024, t.n/16) {
		t.sweepTxs()
	}
	t.txs[index] = tx
}

// Put sets the mark of sid to index, whose transaction SetTx recorded.
// At most half the slots are used: short probe runs made a put of a
// period-major part 6 ns instead of 11 at three quarters.
func (t *markTable) Put(sid, index uint64) {
	if sid == 0 {
		t.zero, t.hasZero = markSlot{0, index}, true
		return
	}
	if (t.n+1)*2 > len(t.slots) {
		t.grow()
	}
	i, ok := t.find(sid)
	if !ok {
		t.n++
	}
	t.slots[i] = markSlot{sid, index}
}

// Delete removes the mark of sid, if any.
func (t *markTable) Delete(sid uint64) {
	if sid == 0 {
		t.hasZero = false
		return
	}
	if t.n == 0 {
		return
	}
	i, ok := t.find(sid)
	if !ok {
		return
	}
	// Backward-shift deletion: move later slots of the probe run into
	// the hole when their home does not lie cyclically in (hole, slot],
	// so that no lookup stops early at an empty slot.
	mask := len(t.slots) - 1
	hole := i
	for j := (i + 1) & mask; t.slots[j].sid != 0; j = (j + 1) & mask {
		h := t.home(t.slots[j].sid)
		if (j-h)&mask >= (j-hole)&mask {
			t.slots[hole] = t.slots[j]
			hole = j
		}
	}
	t.slots[hole] = markSlot{}
	t.n--
}

// All calls yield with every mark until it returns false, in no
// particular order. yield must not change the table.
func (t *markTable) All(yield func(sid uint64, m dirtyMark) bool) {
	if t.hasZero && !yield(0, dirtyMark{index: t.zero.index, tx: t.txs[t.zero.index]}) {
		return
	}
	for _, s := range t.slots {
		if s.sid != 0 && !yield(s.sid, dirtyMark{index: s.index, tx: t.txs[s.index]}) {
			return
		}
	}
}

// grow doubles the slots (or allocates the first ones) and reinserts.
func (t *markTable) grow() {
	old := t.slots
	size := max(2*len(old), minMarkSlots)
	t.slots = make([]markSlot, size)
	t.shift = 64 - uint(bits.TrailingZeros(uint(size)))
	for _, s := range old {
		if s.sid != 0 {
			i, _ := t.find(s.sid)
			t.slots[i] = s
		}
	}
}

// sweepTxs drops the transactions no mark refers to any more.
func (t *markTable) sweepTxs() {
	used := make(map[uint64]struct{}, len(t.txs))
	if t.hasZero {
		used[t.zero.index] = struct{}{}
	}
	for _, s := range t.slots {
		if s.sid != 0 {
			used[s.index] = struct{}{}
		}
	}
	for index := range t.txs {
		if _, ok := used[index]; !ok {
			delete(t.txs, index)
		}
	}
	t.txKept = len(t.txs)
}
