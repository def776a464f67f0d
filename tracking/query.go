package tracking

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// ErrInvalid wraps every error caused by a bad argument (malformed id or
// cursor, unknown stage, bad query), so callers can answer 400.
var ErrInvalid = errors.New("tracking: invalid argument")

// Page size limits of the paged queries.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

func pageLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

func encodeCursor(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func decodeCursor(c string, size int) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) != size {
		return nil, fmt.Errorf("%w: bad cursor %q", ErrInvalid, c)
	}
	return b, nil
}

func parseID(s string) ([ulidLen]byte, error) {
	id, err := parseULID(s)
	if err != nil {
		return id, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return id, nil
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i]++; end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

func (s *Store) txState(r Reader, id [ulidLen]byte) (*txState, error) {
	var st *txState
	found, err := get(r, s.k.tx(id), func(v []byte) error {
		var err error
		st, err = decodeTxState(id, v)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrNotFound
	}
	return st, nil
}

// Transaction returns transaction id with its blocks (in pipeline order)
// and progress, read from r (nil: the store's reader). It returns
// ErrNotFound for an unknown or expired id.
func (s *Store) Transaction(ctx context.Context, r Reader, id string) (*TxView, error) {
	r, err := s.readerOr(r)
	if err != nil {
		return nil, err
	}
	u, err := parseID(id)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := s.txState(r, u)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("tracking: transaction %s: %w", id, err)
	}
	v := &TxView{Transaction: st.tx, Blocks: []Block{}, Progress: deriveProgress(st)}
	lower := append([]byte{s.k.p, tableBlock}, u[:]...)
	err = scan(r, lower, prefixEnd(lower), false, func(it *pebble.Iterator) (bool, error) {
		k := it.Key()
		stage := stageOf(k[len(k)-1])
		val, err := it.ValueAndErr()
		if err != nil {
			return false, err
		}
		b, err := decodeBlock(stage, val)
		if err != nil {
			return false, err
		}
		v.Blocks = append(v.Blocks, b)
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("tracking: transaction %s: blocks: %w", id, err)
	}
	return v, nil
}

// Rejections returns up to limit (default DefaultLimit, at most MaxLimit)
// rejected rows of transaction txID in row order, starting after cursor
// (empty: from the start), and the cursor of the next page ("" when this is
// the last page).
func (s *Store) Rejections(ctx context.Context, r Reader, txID, cursor string, limit int) ([]Rejection, string, error) {
	r, err := s.readerOr(r)
	if err != nil {
		return nil, "", err
	}
	u, err := parseID(txID)
	if err != nil {
		return nil, "", err
	}
	limit = pageLimit(limit)
	prefix := append([]byte{s.k.p, tableRejection}, u[:]...)
	lower := prefix
	if cursor != "" {
		c, err := decodeCursor(cursor, 6)
		if err != nil {
			return nil, "", err
		}
		lower = append(append(bytes.Clone(prefix), c...), 0)
	}
	out := []Rejection{}
	var next string
	var last []byte
	err = scan(r, lower, prefixEnd(prefix), false, func(it *pebble.Iterator) (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		k := it.Key()[len(prefix):]
		if len(k) != 6 {
			return false, errCorrupt
		}
		if len(out) == limit {
			next = encodeCursor(last)
			return false, nil
		}
		val, err := it.ValueAndErr()
		if err != nil {
			return false, err
		}
		rj, err := decodeRejection(binary.BigEndian.Uint32(k), val)
		if err != nil {
			return false, err
		}
		out = append(out, rj)
		last = append(last[:0], k...)
		return true, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("tracking: rejections of %s: %w", txID, err)
	}
	return out, next, nil
}

// Filter selects transactions for Transactions. Zero fields match all.
type Filter struct {
	Dataset string `json:"dataset,omitempty"`
	Source  Source `json:"source,omitempty"`
	Status  Status `json:"status,omitempty"`
	// From and To bound the id timestamp (the ingress time): From <= t < To.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Limit is the page size: default DefaultLimit, at most MaxLimit.
	Limit int `json:"limit,omitempty"`
	// Cursor is the next value of the previous page; empty for the first.
	Cursor string `json:"cursor,omitempty"`
}

func (f *Filter) match(t *Transaction) bool {
	return (f.Dataset == "" || t.Dataset == f.Dataset) &&
		(f.Source == "" || t.Source == f.Source) &&
		(f.Status == "" || t.Status == f.Status)
}

// Transactions lists transactions matching f, newest first (by id), and
// returns the cursor of the next page ("" when this is the last page).
// With a Dataset, Status or Source filter it walks that secondary index
// (in this order of preference) day by day; otherwise the transactions
// themselves, backwards.
func (s *Store) Transactions(ctx context.Context, r Reader, f Filter) ([]Transaction, string, error) {
	r, err := s.readerOr(r)
	if err != nil {
		return nil, "", err
	}
	if f.Status != "" && f.Status.code() == 0 {
		return nil, "", fmt.Errorf("%w: unknown status %q", ErrInvalid, f.Status)
	}
	limit := pageLimit(f.Limit)
	// Suffix bounds on the ulid: [lo, hi).
	var lo, hi []byte
	if !f.From.IsZero() {
		lo = ulidBound(f.From)
	}
	if !f.To.IsZero() {
		hi = ulidBound(f.To)
	}
	if f.Cursor != "" {
		c, err := decodeCursor(f.Cursor, ulidLen)
		if err != nil {
			return nil, "", err
		}
		if hi == nil || bytes.Compare(c, hi) < 0 {
			hi = c
		}
	}
	out := []Transaction{}
	var next string
	// visit adds t if it matches; it returns false when the page is full.
	visit := func(t *Transaction) bool {
		if !f.match(t) {
			return true
		}
		if len(out) == limit {
			u, _ := parseULID(out[limit-1].ID)
			next = encodeCursor(u[:])
			return false
		}
		out = append(out, *t)
		return true
	}
	n := 0
	checkCtx := func() error {
		if n++; n%256 == 0 {
			return ctx.Err()
		}
		return nil
	}

	var dim byte
	var value string
	switch {
	case f.Dataset != "":
		dim, value = dimDataset, f.Dataset
	case f.Status != "":
		dim, value = dimStatus, string(f.Status)
	case f.Source != "":
		dim, value = dimSource, string(f.Source)
	}
	if dim == 0 {
		prefix := []byte{s.k.p, tableTx}
		lower, upper := bound(prefix, lo, hi)
		err = scan(r, lower, upper, true, func(it *pebble.Iterator) (bool, error) {
			if err := checkCtx(); err != nil {
				return false, err
			}
			var id [ulidLen]byte
			copy(id[:], it.Key()[2:])
			val, err := it.ValueAndErr()
			if err != nil {
				return false, err
			}
			st, err := decodeTxState(id, val)
			if err != nil {
				return false, err
			}
			return visit(&st.tx), nil
		})
		if err != nil {
			return nil, "", fmt.Errorf("tracking: transactions: %w", err)
		}
		return out, next, nil
	}

	loDay, hiDay, ok, err := s.indexDays(r, lo, hi)
	if err != nil || !ok {
		return out, "", err
	}
	for d := int64(hiDay); d >= int64(loDay); d-- {
		prefix := s.k.indexPrefix(uint32(d), dim, value)
		lower, upper := bound(prefix, lo, hi)
		more := true
		err = scan(r, lower, upper, true, func(it *pebble.Iterator) (bool, error) {
			if err := checkCtx(); err != nil {
				return false, err
			}
			k := it.Key()
			var id [ulidLen]byte
			copy(id[:], k[len(k)-ulidLen:])
			st, err := s.txState(r, id)
			if errors.Is(err, ErrNotFound) {
				return true, nil // expired before its index entry
			}
			if err != nil {
				return false, err
			}
			more = visit(&st.tx)
			return more, nil
		})
		if err != nil {
			return nil, "", fmt.Errorf("tracking: transactions: %w", err)
		}
		if !more {
			break
		}
	}
	return out, next, nil
}

// bound returns [prefix+lo, prefix+hi) with nil lo/hi meaning unbounded.
func bound(prefix, lo, hi []byte) (lower, upper []byte) {
	lower = append(bytes.Clone(prefix), lo...)
	if hi == nil {
		return lower, prefixEnd(prefix)
	}
	return lower, append(bytes.Clone(prefix), hi...)
}

// indexDays returns the day partitions of the tx index to visit for id
// suffix bounds [lo, hi); ok is false when there is nothing to visit.
func (s *Store) indexDays(r Reader, lo, hi []byte) (loDay, hiDay uint32, ok bool, err error) {
	table := []byte{s.k.p, tableIndex}
	dayOf := func(it *pebble.Iterator) (bool, error) {
		k := it.Key()
		if len(k) < 6 {
			return false, errCorrupt
		}
		loDay = binary.BigEndian.Uint32(k[2:])
		ok = true
		return false, nil
	}
	if err := scan(r, table, prefixEnd(table), true, dayOf); err != nil || !ok {
		return 0, 0, false, err
	}
	hiDay = loDay
	if hi != nil {
		var u [ulidLen]byte
		copy(u[:], hi)
		hiDay = min(hiDay, ulidDay(u))
	}
	ok = false
	if err := scan(r, table, prefixEnd(table), false, dayOf); err != nil || !ok {
		return 0, 0, false, err
	}
	if lo != nil {
		var u [ulidLen]byte
		copy(u[:], lo)
		loDay = max(loDay, ulidDay(u))
	}
	return loDay, hiDay, loDay <= hiDay, nil
}

// objectCursorLen is the length of an Object cursor: the position of the
// last event returned, day u32 | ms u32 | ulid | row u32 | stage u8.
const objectCursorLen = 4 + 4 + ulidLen + 4 + 1

// objectPos is the time-order position of an object event.
type objectPos struct {
	day, ms uint32
	tx      [ulidLen]byte
	row     uint32
	stage   byte
}

func (p *objectPos) compare(q *objectPos) int {
	switch {
	case p.day != q.day:
		return cmpU32(p.day, q.day)
	case p.ms != q.ms:
		return cmpU32(p.ms, q.ms)
	}
	if c := bytes.Compare(p.tx[:], q.tx[:]); c != 0 {
		return c
	}
	if p.row != q.row {
		return cmpU32(p.row, q.row)
	}
	return int(p.stage) - int(q.stage)
}

func cmpU32(a, b uint32) int {
	if a < b {
		return -1
	}
	return 1
}

func (p *objectPos) cursor() string {
	c := make([]byte, 0, objectCursorLen)
	c = appendU32(c, p.day)
	c = appendU32(c, p.ms)
	c = append(c, p.tx[:]...)
	c = appendU32(c, p.row)
	return encodeCursor(append(c, p.stage))
}

// objectEv is an event being assembled by Object, with its position.
type objectEv struct {
	pos objectPos
	ev  ObjectEvent
}

// Object returns up to limit (default DefaultLimit, at most MaxLimit)
// events of object objectID in time order (record time, then transaction,
// row and stage), starting after cursor, and the cursor of the next page
// ("" when this is the last page).
//
// It visits the day partitions of the object index (keys.go, "Object
// index") from the cursor's day on, oldest first, as far as the page
// needs: for each, it reads the object's bucket of every run and every
// staged call of that day, keeps the chunk entries of objectID and sorts
// them.
func (s *Store) Object(ctx context.Context, r Reader, objectID string, limit int, cursor string) ([]ObjectEvent, string, error) {
	r, err := s.readerOr(r)
	if err != nil {
		return nil, "", err
	}
	if objectID == "" {
		return nil, "", fmt.Errorf("%w: empty object id", ErrInvalid)
	}
	limit = pageLimit(limit)
	q := &objectLookup{s: s, r: r, objectID: objectID, bucket: objectBucket(objectID), datasets: map[[ulidLen]byte]string{}}
	if cursor != "" {
		c, err := decodeCursor(cursor, objectCursorLen)
		if err != nil {
			return nil, "", err
		}
		q.after = &objectPos{day: binary.BigEndian.Uint32(c), ms: binary.BigEndian.Uint32(c[4:]),
			row: binary.BigEndian.Uint32(c[8+ulidLen:]), stage: c[8+ulidLen+4]}
		copy(q.after.tx[:], c[8:])
	}
	err = func() (err error) {
		// The object index's tables: runs, the read-only runs under the
		// main prefix, and the staged calls (keys.go).
		srcs := []struct {
			p, t byte
			it   *pebble.Iterator
			day  uint32 // the first day >= the current one with a key
			ok   bool   // false: no such day
		}{{p: s.k.q, t: tableObjRun}, {p: s.k.p, t: tableObjRun}, {p: s.k.p, t: tableObjStage}}
		for i := range srcs {
			src := &srcs[i]
			src.it, err = r.NewIter(&pebble.IterOptions{LowerBound: []byte{src.p, src.t}, UpperBound: []byte{src.p, src.t + 1}})
			if err != nil {
				return err
			}
			defer func() {
				if cerr := src.it.Close(); err == nil {
					err = cerr
				}
			}()
		}
		// And the staged calls held in memory (Config.VolatileStaging),
		// by key like the staging table.
		vol := s.vol.forLookup()
		var day uint32
		if q.after != nil {
			day = q.after.day
		}
		// q.evs collects up to limit+1 events: the extra one says there
		// is a next page. A day is read whole, then sorted.
		for len(q.evs) <= limit {
			next, found := uint32(1<<32-1), false
			for i := range srcs {
				src := &srcs[i]
				if src.day, src.ok, err = q.firstDay(src.it, src.p, src.t, day); err != nil {
					return err
				}
				if src.ok {
					next, found = min(next, src.day), true
				}
			}
			vi, _ := slices.BinarySearchFunc(vol, objDay(s.k.p, tableObjStage, day), func(c stagedCall, k []byte) int { return bytes.Compare(c.key, k) })
			vol = vol[vi:]
			if len(vol) > 0 {
				next, found = min(next, stagedDay(vol[0].key)), true
			}
			if !found {
				return nil
			}
			day = next
			n0 := len(q.evs)
			for len(vol) > 0 && stagedDay(vol[0].key) == day {
				chunk, ok, err := stagedChunk(vol[0].val, q.bucket)
				if err != nil {
					return err
				}
				if ok {
					if err := q.addChunk(day, vol[0].key[objDayPrefixLen:], chunk); err != nil {
						return err
					}
				}
				vol = vol[1:]
			}
			for i := range srcs {
				src := &srcs[i]
				if !src.ok || src.day != day {
					continue
				}
				if src.t == tableObjStage {
					err = q.staged(ctx, src.it, day)
				} else {
					err = q.runs(ctx, src.it, src.p, day)
				}
				if err != nil {
					return err
				}
			}
			q.evs = append(q.evs[:n0], sortEvents(q.evs[n0:])...)
			if day == 1<<32-1 {
				return nil
			}
			day++
		}
		return nil
	}()
	if err != nil {
		return nil, "", fmt.Errorf("tracking: object %q: %w", objectID, err)
	}
	evs := q.evs
	var next string
	if len(evs) > limit {
		evs = evs[:limit]
		next = evs[limit-1].pos.cursor()
	}
	out := make([]ObjectEvent, len(evs))
	for i := range evs {
		out[i] = evs[i].ev
	}
	return out, next, nil
}

// sortEvents sorts evs by position and drops repeated positions (the same
// time, transaction, row and stage recorded twice is one event; the one
// read later wins). It returns the shortened slice.
func sortEvents(evs []objectEv) []objectEv {
	slices.SortStableFunc(evs, func(a, b objectEv) int { return a.pos.compare(&b.pos) })
	w := 0
	for i := range evs {
		if w > 0 && evs[w-1].pos == evs[i].pos {
			w--
		}
		evs[w] = evs[i]
		w++
	}
	return evs[:w]
}

// txDataset returns the dataset of transaction id ("" if it has expired),
// through the cache datasets.
func (s *Store) txDataset(r Reader, id [ulidLen]byte, datasets map[[ulidLen]byte]string) (string, error) {
	if ds, ok := datasets[id]; ok {
		return ds, nil
	}
	var ds string
	st, err := s.txState(r, id)
	switch {
	case err == nil:
		ds = st.tx.Dataset
	case !errors.Is(err, ErrNotFound):
		return "", err
	}
	datasets[id] = ds
	return ds, nil
}
