package tracking

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Transaction ids are ULIDs: 26 Crockford base32 characters encoding a
// 48-bit Unix millisecond timestamp followed by 80 bits of entropy. The
// package only parses and formats them (ids are assigned at ingress, not
// here); keys hold the 16-byte binary form, which sorts like the string.

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

var crockfordDec = func() (d [256]byte) {
	for i := range d {
		d[i] = 0xff
	}
	for i := 0; i < len(crockford); i++ {
		d[crockford[i]] = byte(i)
		d[crockford[i]|0x20] = byte(i) // lower case
	}
	return d
}()

// parseULID decodes a 26-character ULID string (case-insensitive).
func parseULID(s string) (id [ulidLen]byte, err error) {
	if len(s) != 26 {
		return id, fmt.Errorf("invalid tx id %q: want 26 characters, got %d", s, len(s))
	}
	var hi, lo uint64
	for i := 0; i < 26; i++ {
		v := crockfordDec[s[i]]
		if v == 0xff {
			return id, fmt.Errorf("invalid tx id %q: bad character %q", s, s[i])
		}
		if i == 0 && v > 7 {
			return id, fmt.Errorf("invalid tx id %q: overflows 128 bits", s)
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(v)
	}
	binary.BigEndian.PutUint64(id[:8], hi)
	binary.BigEndian.PutUint64(id[8:], lo)
	return id, nil
}

// formatULID encodes a binary ULID as its canonical upper-case string.
func formatULID(id [ulidLen]byte) string {
	hi := binary.BigEndian.Uint64(id[:8])
	lo := binary.BigEndian.Uint64(id[8:])
	var b [26]byte
	for i := 25; i >= 0; i-- {
		b[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(b[:])
}

// ulidMillis returns the id's timestamp in Unix milliseconds.
func ulidMillis(id [ulidLen]byte) int64 {
	var b [8]byte
	copy(b[2:], id[:6])
	return int64(binary.BigEndian.Uint64(b[:]))
}

// ulidTime returns the id's timestamp.
func ulidTime(id [ulidLen]byte) time.Time {
	return time.UnixMilli(ulidMillis(id)).UTC()
}

// IDTime returns the timestamp embedded in the ULID transaction id, which
// orders transaction listings and decides their retention.
func IDTime(id string) (time.Time, error) {
	u, err := parseID(id)
	if err != nil {
		return time.Time{}, err
	}
	return ulidTime(u), nil
}
