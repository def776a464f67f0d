package tracking

import (
	"encoding/binary"
	"time"
)

// Key layout. Every tracking key starts with the one prefix byte P given in
// Config.Prefix (default 't'), so tracking owns the range [P, P+1) of the
// Pebble instance it writes into, and then a table byte. Integers are
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
//	object       P 'O' | day u32 | bucket u16 | ms u32 | ulid[16] | row u32        object chunk (codec.go)
//	             | stage u8
//	stats        P 's' | dim u8 | minute u32 | uvarint len | value | stage u8      statAgg   (stats.go)
//	(retired)    P 'o' | ...  object index v1, one key per entry: never reuse 'o'
//
// day = Unix days (UTC), minute = Unix minutes, ms = milliseconds since the
// start of day (object events keep millisecond precision). The tx index is
// partitioned by the day of the tx id's timestamp, the object index by the
// day of the record time passed to RecordObjects, and the stats by the
// minute of the block's finish time: every table has a time prefix (either
// first or right after a fixed dimension byte), so retention is a handful
// of DeleteRange calls (retention.go) and never a scan.
//
// # Object index
//
// The object index is a hash-bucketed posting list: one RecordObjects call
// (one transaction, one record time) writes ONE key per object bucket it
// touches, not one per object. bucket = objectBucket(object id), a stable
// hash (FNV-1a 64 of the id's bytes, then the murmur3 fmix64 finalizer)
// reduced to objectBuckets = 1024 buckets; the value is the chunk of that
// call's entries whose object falls in the bucket, in call order:
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
// The key's row and stage are those of the chunk's smallest (row, stage)
// entry: within a transaction a (row, stage) pair is recorded once, so two
// calls of one transaction (several parts, several Raft entries, maybe the
// same millisecond) never write the same key, and repeating a call writes
// the same keys and values again (idempotent). A later call that repeats a
// (row, stage) of an earlier call at the same millisecond with different
// other entries replaces the earlier call's chunk in that bucket.
//
// A 10,000-object transaction thus writes about 1,000 keys (one per
// touched bucket) instead of 10,000. Looking an object up reads, for each
// day partition that holds data, the one bucket range of its hash: about
// 1/1024 of that day's entries, skipped cheaply by comparing id bytes (see
// BenchmarkObjectLookup for the latency at 10M objects). A finer bucket
// count would make lookups cheaper and writes dearer (more keys per call).
//
// Tx index dims are dimDataset, dimSource and dimStatus; the status entry
// of a transaction is moved (Delete + Set) when its status changes. Stats
// dims are dimStage (value is empty), dimDataset, dimSource and dimNode.
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
// count needs a new table byte, as 'O' replaced 'o'.
const (
	tableTx        byte = 't'
	tableBlock     byte = 'b'
	tableRejection byte = 'r'
	tableIndex     byte = 'i'
	tableObject    byte = 'O'
	tableObjectV1  byte = 'o' // retired; Expire still range-deletes it
	tableStats     byte = 's'
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

// keys builds keys below one prefix byte.
type keys struct{ p byte }

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

// objectKeyLen is the length of an object key; objectPrefixLen that of its
// P 'O' day bucket prefix.
const (
	objectPrefixLen = 2 + 4 + 2
	objectKeyLen    = objectPrefixLen + 4 + ulidLen + 4 + 1
)

// objectPrefix returns P 'O' day bucket.
func (k keys) objectPrefix(day uint32, bucket uint16) []byte {
	b := append(make([]byte, 0, objectKeyLen), k.p, tableObject)
	b = appendU32(b, day)
	return appendU16(b, bucket)
}

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
