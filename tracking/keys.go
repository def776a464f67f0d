package tracking

import (
	"encoding/binary"
	"time"
)

// Key layout. Every tracking key starts with the one prefix byte P given in
// Config.Prefix (default 't'), so tracking owns the range [P, P+1) of the
// Pebble instance it writes into, and then a table byte; the object
// index's runs alone live under a second prefix byte Q, Config.RunPrefix
// (default 0xfe), in [Q, Q+1) (see "Runs" below for why). Integers are
// big-endian so byte order equals numeric order; strings inside keys are
// uvarint-length-prefixed (object ids and dimension values may contain any
// byte, including 0x00). A tx id is the 16-byte binary form of its ULID,
// whose first 6 bytes are the id's Unix time in milliseconds, so every
// tx-keyed table is time-ordered.
//
//	table        key                                                               value
//	-----------  ----------------------------------------------------------------  ---------------------------
//	transaction  P 't' | ulid[16]                                                  txState   (codec.go)
//	block        P 'b' | ulid[16] | stage u8                                       Block     (codec.go)
//	rejection    P 'r' | ulid[16] | row u32 | seq u16                              Rejection (codec.go)
//	tx index     P 'i' | day u32 | dim u8 | uvarint len | value | ulid[16]         empty
//	obj staging  P 'S' | day u32 | ms u32 | ulid[16] | row u32 | stage u8          staged call (objects.go)
//	obj runs     Q 'R' | day u32 | run u32 | bucket u16                            run chunk   (objects.go)
//	meta         P 'M' | name u8                                                   per name (objects.go)
//	(read-only)  P 'R' | day u32 | run u32 | bucket u16                            run chunk: runs written before Q existed
//	stats        P 's' | dim u8 | minute u32 | uvarint len | value | stage u8      statAgg   (stats.go)
//	(retired)    P 'O' | ...  object index v2, one key per bucket per call: never reuse 'O'
//	(retired)    P 'o' | ...  object index v1, one key per entry: never reuse 'o'
//
// day = Unix days (UTC), minute = Unix minutes, ms = milliseconds since the
// start of day (object events keep millisecond precision). The tx index is
// partitioned by the day of the tx id's timestamp, the object index by the
// day of the record time passed to RecordObjects, and the stats by the
// minute of the block's finish time: every table but meta has a time
// prefix (either first or right after a fixed dimension byte), so
// retention is a handful of DeleteRange calls (retention.go) and never a
// scan. Meta holds a few fixed keys that live forever (metaObjects: the
// object index's staging counters, run counter and last expired day).
//
// # Object index
//
// The object index is a hash-bucketed posting list, written in two steps
// so that the apply path writes one time-ordered key per call and the
// bucket-major layout is produced in bulk.
//
// bucket = objectBucket(object id), a stable hash (FNV-1a 64 of the id's
// bytes, then the murmur3 fmix64 finalizer) reduced to objectBuckets =
// 1024 buckets. The entries of one RecordObjects call (one transaction,
// one record time) that fall in one bucket form a chunk, in call order:
//
//	chunk = version u8 (codecV1) | flags u8 [| dataset str] | n uvarint
//	        | n x ( shared uvarint | rest str | row delta varint
//	                | stage<<2|outcome u8 [| field str | reason str] )
//
// flags bit 0x80 (objHasDataset) says the dataset is in the chunk because
// the transaction record could not supply it (queries join it from the
// transaction otherwise). Ids are front-coded: an entry's id is the first
// shared bytes (at most 255) of the previous entry's id followed by rest;
// its row is the previous entry's row (0 before the first) plus the delta.
// Field and reason follow rejected entries only.
//
// Staging ('S'): a RecordObjects call writes ONE key, its call identity
// (day, ms, tx, and the smallest (row, stage) of its entries), whose value
// is all of the call's chunks, one per touched bucket in bucket order,
// behind a directory for jumping to one bucket's chunk:
//
//	staged call = version u8 (codecV1) | nb uvarint | nb x ( bucket u16 | end u32 )
//	              | nb x chunk
//
// where end is the offset in the value just past that bucket's chunk (the
// first chunk starts right after the directory). The keys are time
// ordered, so consecutive calls land next to each other in the memtable.
//
// Runs ('R'): once the staged calls reach a threshold (Config.ObjectFold*:
// entries, calls or bytes), the call that reaches it folds every staged
// call (the ones committed and the ones staged earlier in the same batch,
// plus itself) into one run per day present, ingested or inside the same
// batch (see "Where runs go"), and range-deletes the whole staging table. A run has one key per touched
// bucket: the concatenation of that bucket's chunks of every folded call
// of that day, in call-identity order, each behind its call identity:
//
//	run chunk = version u8 (codecV1)
//	            | k x ( ms u32 | ulid[16] | row u32 | stage u8 | len uvarint | chunk[len] )
//
// Folding copies bytes and decodes no entry. run is a counter kept in the
// meta key metaObjects (with the staged calls, entries and bytes since
// the last fold), so all keys of one fold are contiguous and later folds
// sort after earlier ones: flushed runs of a day do not overlap, unlike
// bucket-major keys written per call. The thresholds keep the staged bytes
// well below a memtable, so staged values are usually deleted before they
// are flushed. Both steps are deterministic (the counters are read through
// the Recorder's overlay), so every node writes the same bytes whatever
// its batch boundaries.
//
// Where runs go (ingest.go): runs are the only tracking data that grows
// with every row, and written through the batch they went through the
// memtable, a flush and every compaction level with the rest of the
// keyspace (measured: about half the cost of the object index). So they
// live under their own prefix Q, which should be the last prefix in use in
// the Pebble instance, and a fold with Config.RunIngest set writes its
// runs as one sstable (two above 1 MiB, split in key order and written
// on two goroutines: the fold runs on the apply path) and ingests them
// together. Run keys of later folds sort after earlier ones (day, then
// the run counter), so the files overlap nothing and Pebble places them
// in the bottom level, where they stay until retention deletes them:
// written once, never rewritten. The ingest happens
// during the apply, before the batch commits; a crash in between replays
// the entries, which fold again into the same run with the same bytes. A
// failed ingest falls back to writing the same keys into the batch.
// Ingested keys are older than every operation of the batch being built,
// so a range deletion earlier in that batch would delete them where the
// batch write would not: the only one that can cover runs is Expire, so a
// fold never writes runs (nor stages calls) of a day before the last
// Expire's day (objMeta.expired, replicated like the other counters).
//
// Volatile staging (Config.VolatileStaging, the FSM's setting): after the
// runs, the staged calls were what was left of the object index's cost
// (each call's bytes through the batch, the WAL and the memtable, and the
// flushes that memtable use brings), so a store can keep them out of
// Pebble: a Recorder stages calls only in its batch's list, Published
// (after the commit) moves them to the store's memory, and folds and
// lookups read memory and the staging table alike. The counters are
// unchanged (written in the batch), so folds happen at the same calls.
// The caller makes the memory durable: PersistStaged writes the calls
// into the staging table (the FSM does it in Snapshot, so a snapshot
// carries them and Raft may truncate their entries), and after a restart
// a Restager (NewRestager) records again the calls of what the caller
// replays (the FSM: entries after the last Raft snapshot that have a
// pending key; cluster/fsm_tracking.go). Replicas then hold the same
// answers but not the same bytes: the staging table of a node that took
// a snapshot has calls that another holds in memory, until the next
// fold.
//
// Looking an object up visits, for each day that holds data, each run of
// that day (one seek to (day, run, bucket)) and each staged call of that
// day (one directory search), and scans only the object's bucket: about
// 1/1024 of the day's entries, skipped cheaply by comparing id bytes (see
// BenchmarkObjectLookup for the latency at 10M objects). Lookups cost one
// seek per run, so a day of N entries costs about N / ObjectFoldEntries
// seeks: ~100 for 20M entries, but ~500 per day at 100M entries a day.
// TODO(tracking): if days that large matter, merge a day's runs into
// larger ones (again a copy per bucket, in the apply batch).
//
// Repeats: repeating a call writes the same staging key and value again
// (idempotent while staged). A repeat that arrives after the original was
// folded is staged and folded again; lookups drop repeated positions (the
// same time, transaction, row and stage), so it is still one event. Within
// a transaction record each (row, stage) pair once (calls for different
// parts carry different rows): a later call at the same millisecond whose
// smallest (row, stage) equals an earlier staged call's replaces that call
// as a whole.
//
// The retired 'O' table held the same chunks under one key per touched
// bucket per call (P 'O' | day | bucket | ms | ulid | row | stage), about
// 1,000 keys per 10,000-object call at random places in the memtable; it
// is no longer read, and Expire still range-deletes it.
//
// Tx index dims are dimDataset, dimSource and dimStatus; the status entry
// of a transaction is moved (Delete + Set) when its status changes. Stats
// dims are dimStage (value is empty), dimDataset, dimSource and dimNode.
//
// WARNING: this layout is on disk on every node and inside every FSM
// snapshot, and all nodes must produce byte-identical keys. Never renumber a
// table or a dimension byte, never reorder the Stage list and never change
// an encoding in place: add a new table byte or a new value version
// instead. In particular objectBuckets and the objectBucket hash are part
// of the format: changing either makes every stored object entry
// unreachable (lookups would read the wrong bucket), so a different bucket
// count or hash needs new table bytes, as 'O' replaced 'o' (and as 'S'
// and 'R' replaced 'O' for a new layout). The fold thresholds (Config.ObjectFoldEntries, Calls,
// Bytes) decide when a fold happens and so which bytes are written: they
// must be equal on every node, like the code.
const (
	tableTx        byte = 't'
	tableBlock     byte = 'b'
	tableRejection byte = 'r'
	tableIndex     byte = 'i'
	tableObjStage  byte = 'S'
	tableObjRun    byte = 'R'
	tableMeta      byte = 'M'
	tableStats     byte = 's'
	tableObjectV2  byte = 'O' // retired; Expire still range-deletes it
	tableObjectV1  byte = 'o' // retired; Expire still range-deletes it
)

// Names of the meta keys (P 'M' name).
const (
	metaObjects byte = 'o' // object index counters: objMeta (objects.go)
)

// Dimension bytes for the tx index and the stats table.
const (
	dimStage   byte = 1
	dimDataset byte = 2
	dimSource  byte = 3
	dimNode    byte = 4
	dimStatus  byte = 5
)

const (
	ulidLen     = 16
	secsPerDay  = 86400
	nanosPerMin = int64(time.Minute)
)

// unixDay returns t's day number since 1970-01-01 UTC, clamped to 0.
func unixDay(t time.Time) uint32 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	return uint32(s / secsPerDay)
}

// unixMinute returns t's minute number since the Unix epoch, clamped to 0.
func unixMinute(t time.Time) uint32 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	return uint32(s / 60)
}

// msOfDay returns the milliseconds since the start of t's (UTC) day.
func msOfDay(t time.Time) uint32 {
	ms := t.UnixMilli()
	if ms < 0 {
		return 0
	}
	return uint32(ms % (secsPerDay * 1000))
}

// unixNanos returns t as non-negative Unix nanoseconds (zero time -> 0).
func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	n := t.UnixNano()
	if n < 0 {
		return 0
	}
	return n
}

// fromNanos is the inverse of unixNanos; 0 maps to the zero time.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func appendU16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func appendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// appendKeyString appends a uvarint length and s.
func appendKeyString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// keys builds keys below the prefix bytes p (Config.Prefix) and q
// (Config.RunPrefix, the object index's runs).
type keys struct{ p, q byte }

func (k keys) table(t byte) []byte { return []byte{k.p, t} }

// tableEnd returns the exclusive upper bound of table t.
func (k keys) tableEnd(t byte) []byte { return []byte{k.p, t + 1} }

func (k keys) tx(id [ulidLen]byte) []byte {
	return append([]byte{k.p, tableTx}, id[:]...)
}

func (k keys) block(id [ulidLen]byte, st Stage) []byte {
	b := append(make([]byte, 0, 3+ulidLen), k.p, tableBlock)
	b = append(b, id[:]...)
	return append(b, st.code())
}

func (k keys) rejection(id [ulidLen]byte, row uint32, seq uint16) []byte {
	b := append(make([]byte, 0, 2+ulidLen+6), k.p, tableRejection)
	b = append(b, id[:]...)
	b = appendU32(b, row)
	return appendU16(b, seq)
}

// indexPrefix returns P 'i' day dim value (everything before the ulid).
func (k keys) indexPrefix(day uint32, dim byte, value string) []byte {
	b := append(make([]byte, 0, 8+len(value)+ulidLen), k.p, tableIndex)
	b = appendU32(b, day)
	b = append(b, dim)
	return appendKeyString(b, value)
}

func (k keys) index(id [ulidLen]byte, dim byte, value string) []byte {
	return append(k.indexPrefix(ulidDay(id), dim, value), id[:]...)
}

// objectBuckets is the number of object-index buckets per day (a power of
// two). On-disk format: see the WARNING above.
const objectBuckets = 1024

// objectBucket returns the object-index bucket of an object id: FNV-1a 64
// of its bytes, mixed by the murmur3 fmix64 finalizer (FNV's low bits
// alone are weak), modulo objectBuckets. On-disk format: never change it.
func objectBucket(id string) uint16 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return uint16(h & (objectBuckets - 1))
}

// Object-index key lengths: a staging key, a run key, and the P T day
// prefix both tables start with.
const (
	objDayPrefixLen = 2 + 4
	objStageKeyLen  = objDayPrefixLen + 4 + ulidLen + 4 + 1
	objRunKeyLen    = objDayPrefixLen + 4 + 2
)

// objDay returns p t day, the prefix of one day of object table t under
// prefix byte p (k.p for staging and the read-only runs, k.q for runs).
func objDay(p, t byte, day uint32) []byte {
	b := append(make([]byte, 0, objStageKeyLen), p, t)
	return appendU32(b, day)
}

// objStage returns the staging key of a call: P 'S' day ms ulid row stage.
func (k keys) objStage(day, ms uint32, id [ulidLen]byte, row uint32, stage byte) []byte {
	b := appendU32(objDay(k.p, tableObjStage, day), ms)
	b = append(b, id[:]...)
	b = appendU32(b, row)
	return append(b, stage)
}

// objRun returns p 'R' day run bucket: a run key under prefix p (k.q, or
// k.p for the read-only runs).
func objRun(p byte, day, run uint32, bucket uint16) []byte {
	b := appendU32(objDay(p, tableObjRun, day), run)
	return appendU16(b, bucket)
}

func (k keys) meta(name byte) []byte { return []byte{k.p, tableMeta, name} }

// statsKey returns P 's' dim minute value stage.
func (k keys) statsKey(dim byte, minute uint32, value string, st Stage) []byte {
	b := append(make([]byte, 0, 9+len(value)), k.p, tableStats, dim)
	b = appendU32(b, minute)
	b = appendKeyString(b, value)
	return append(b, st.code())
}

// ulidBound returns the smallest 16-byte id whose timestamp is >= t, as a
// 6-byte key suffix (ids sort by their leading timestamp).
func ulidBound(t time.Time) []byte {
	ms := t.UnixMilli()
	if ms < 0 {
		ms = 0
	}
	if ms > 1<<48-1 {
		ms = 1<<48 - 1
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(ms))
	return b[2:]
}

// ulidDay returns the day partition of a tx id.
func ulidDay(id [ulidLen]byte) uint32 {
	return uint32(ulidMillis(id) / 1000 / secsPerDay)
}
