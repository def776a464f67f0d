package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Key layout of the raft store's own Pebble instance. Every key starts with
// a one-byte prefix that names its key space; integers are big-endian so that
// Pebble's bytewise order is numeric order.
//
//	meta:    +------+-----+                 value: format version, 1 byte (formatVersion)
//	         | 0x00 | 'v' |
//	         +------+-----+
//
//	log:     +------+-------------------+   value: encoded raft.Log (see below)
//	         | 0x01 | index uint64 (BE) |
//	         +------+-------------------+
//
//	stable:  +------+-----------------+     value: raw bytes; SetUint64 writes
//	         | 0x02 | raft key (bytes) |           8 bytes big-endian
//	         +------+-----------------+
//
// The log key space is exactly [0x01, 0x02), so a log iterator uses
// LowerBound = {0x01} and UpperBound = {0x02} and can never observe stable
// or meta keys. Set and SetUint64 share the stable key space, as in
// raft-boltdb: the last write to a key wins whatever its kind.
//
// Log value, format version 1:
//
//	+-----+-------+------+---------+---------+------------+------+-----------+-----+-----------------------+
//	| ver | flags | type | index   | term    | len(data)  | data | len(ext)  | ext | appended_at (if flag) |
//	| 1 B | 1 B   | 1 B  | uvarint | uvarint | uvarint    |      | uvarint   |     | int64 BE Unix nanos   |
//	+-----+-------+------+---------+---------+------------+------+-----------+-----+-----------------------+
//
// flags bit 0 (flagAppendedAt) says whether appended_at is present; a zero
// AppendedAt is not stored. The index is repeated in the value so that a
// value read under the wrong key is detected as corruption.
//
// WARNING: this is an on-disk format. Prefix bytes, the meta key, the
// big-endian index, the value layout and logValueV1 must never change
// meaning. A new field or encoding needs a new value version byte, and
// decodeLog must keep reading every older version for as long as a store
// written by an older binary may be opened. Changing the key layout needs a
// new formatVersion and a migration in Open.
const (
	prefixMeta   byte = 0x00
	prefixLog    byte = 0x01
	prefixStable byte = 0x02

	// logKeyLen is the length of a log key: prefix + big-endian index.
	logKeyLen = 1 + 8

	// formatVersion is the layout version stored under metaVersionKey.
	formatVersion byte = 1

	// logValueV1 is the version byte of the log value encoding above.
	logValueV1 byte = 1

	// flagAppendedAt marks a log value that carries AppendedAt.
	flagAppendedAt byte = 1 << 0

	// logHeaderLen is ver + flags + type.
	logHeaderLen = 3
)

var (
	// metaVersionKey holds formatVersion.
	metaVersionKey = []byte{prefixMeta, 'v'}

	// logLower and logUpper bound every log iterator: [logLower, logUpper).
	logLower = []byte{prefixLog}
	logUpper = []byte{prefixLog + 1}
)

// errCorrupt reports a log value that cannot be decoded.
var errCorrupt = errors.New("raftstore: corrupt log entry")

// putLogKey writes the key of log index into dst, which must be logKeyLen long.
func putLogKey(dst []byte, index uint64) {
	dst[0] = prefixLog
	binary.BigEndian.PutUint64(dst[1:], index)
}

// logKey returns the key of log index.
func logKey(index uint64) []byte {
	k := make([]byte, logKeyLen)
	putLogKey(k, index)
	return k
}

// parseLogKey returns the index of a log key.
func parseLogKey(k []byte) (uint64, error) {
	if len(k) != logKeyLen || k[0] != prefixLog {
		return 0, fmt.Errorf("%w: bad log key %x", errCorrupt, k)
	}
	return binary.BigEndian.Uint64(k[1:]), nil
}

// stableKey returns the key of the stable-store entry key.
func stableKey(key []byte) []byte {
	k := make([]byte, 0, 1+len(key))
	k = append(k, prefixStable)
	return append(k, key...)
}

// encodedLogLen returns the exact length of the encoding of l.
func encodedLogLen(l *raft.Log) int {
	n := logHeaderLen +
		uvarintLen(l.Index) + uvarintLen(l.Term) +
		uvarintLen(uint64(len(l.Data))) + len(l.Data) +
		uvarintLen(uint64(len(l.Extensions))) + len(l.Extensions)
	if !l.AppendedAt.IsZero() {
		n += 8
	}
	return n
}

// encodeLog writes l into dst, which must be encodedLogLen(l) long.
func encodeLog(dst []byte, l *raft.Log) {
	var flags byte
	if !l.AppendedAt.IsZero() {
		flags |= flagAppendedAt
	}
	dst[0] = logValueV1
	dst[1] = flags
	dst[2] = byte(l.Type)
	n := logHeaderLen
	n += binary.PutUvarint(dst[n:], l.Index)
	n += binary.PutUvarint(dst[n:], l.Term)
	n += binary.PutUvarint(dst[n:], uint64(len(l.Data)))
	n += copy(dst[n:], l.Data)
	n += binary.PutUvarint(dst[n:], uint64(len(l.Extensions)))
	n += copy(dst[n:], l.Extensions)
	if flags&flagAppendedAt != 0 {
		binary.BigEndian.PutUint64(dst[n:], uint64(l.AppendedAt.UnixNano()))
	}
}

// decodeLog decodes v into l. Data and Extensions are copied into one new
// allocation, so l never aliases v (Pebble reuses v after its closer runs).
func decodeLog(v []byte, l *raft.Log) error {
	if len(v) < logHeaderLen {
		return fmt.Errorf("%w: short value (%d bytes)", errCorrupt, len(v))
	}
	if v[0] != logValueV1 {
		return fmt.Errorf("%w: unknown value version %d", errCorrupt, v[0])
	}
	flags, typ := v[1], raft.LogType(v[2])
	if flags&^flagAppendedAt != 0 {
		return fmt.Errorf("%w: unknown flags %#x", errCorrupt, flags)
	}
	r := v[logHeaderLen:]
	index, r, ok := readUvarint(r)
	if !ok {
		return fmt.Errorf("%w: bad index", errCorrupt)
	}
	term, r, ok := readUvarint(r)
	if !ok {
		return fmt.Errorf("%w: bad term", errCorrupt)
	}
	data, r, ok := readBytes(r)
	if !ok {
		return fmt.Errorf("%w: bad data", errCorrupt)
	}
	ext, r, ok := readBytes(r)
	if !ok {
		return fmt.Errorf("%w: bad extensions", errCorrupt)
	}
	var appendedAt time.Time
	if flags&flagAppendedAt != 0 {
		if len(r) < 8 {
			return fmt.Errorf("%w: bad appended_at", errCorrupt)
		}
		appendedAt = time.Unix(0, int64(binary.BigEndian.Uint64(r)))
		r = r[8:]
	}
	if len(r) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(r))
	}

	*l = raft.Log{Index: index, Term: term, Type: typ, AppendedAt: appendedAt}
	if len(data)+len(ext) > 0 {
		buf := make([]byte, len(data)+len(ext))
		copy(buf, data)
		copy(buf[len(data):], ext)
		// Full slice expressions: an append to Data must not overwrite Extensions.
		if len(data) > 0 {
			l.Data = buf[:len(data):len(data)]
		}
		if len(ext) > 0 {
			l.Extensions = buf[len(data):]
		}
	}
	return nil
}

// readUvarint reads one uvarint from b and returns the rest.
func readUvarint(b []byte) (uint64, []byte, bool) {
	x, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, false
	}
	return x, b[n:], true
}

// readBytes reads a uvarint length and that many bytes from b. The result
// aliases b.
func readBytes(b []byte) ([]byte, []byte, bool) {
	n, r, ok := readUvarint(b)
	if !ok || n > uint64(len(r)) {
		return nil, nil, false
	}
	return r[:n], r[n:], true
}

// uvarintLen returns the length of the uvarint encoding of x.
func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
