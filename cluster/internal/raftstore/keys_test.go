package raftstore

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestLogKeyOrder checks that byte order of log keys is index order and
// that every log key sits inside the iterator bounds.
func TestLogKeyOrder(t *testing.T) {
	idx := []uint64{0, 1, 255, 256, 1 << 32, math.MaxUint64 - 1, math.MaxUint64}
	for i := 1; i < len(idx); i++ {
		a, b := logKey(idx[i-1]), logKey(idx[i])
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("logKey(%d) >= logKey(%d)", idx[i-1], idx[i])
		}
	}
	for _, i := range idx {
		k := logKey(i)
		if bytes.Compare(k, logLower) < 0 || bytes.Compare(k, logUpper) >= 0 {
			t.Errorf("logKey(%d) = %x outside [%x, %x)", i, k, logLower, logUpper)
		}
		if got, err := parseLogKey(k); err != nil || got != i {
			t.Errorf("parseLogKey(logKey(%d)): got %d, %v", i, got, err)
		}
	}
	if s := stableKey([]byte{0xff, 0xff}); bytes.Compare(s, logUpper) < 0 {
		t.Errorf("stableKey %x sorts inside the log key space", s)
	}
	if bytes.Compare(metaVersionKey, logLower) >= 0 {
		t.Errorf("metaVersionKey %x sorts inside the log key space", metaVersionKey)
	}
}

// TestLogValueV1Golden pins the on-disk encoding of format version 1.
func TestLogValueV1Golden(t *testing.T) {
	l := &raft.Log{
		Index: 300, Term: 2, Type: raft.LogConfiguration,
		Data: []byte("ab"), Extensions: []byte("x"),
		AppendedAt: time.Unix(0, 0x0102030405060708),
	}
	want := []byte{
		1, 1, 5, // version, flags (appended_at), type
		0xac, 0x02, // index 300
		0x02,           // term
		0x02, 'a', 'b', // data
		0x01, 'x', // extensions
		1, 2, 3, 4, 5, 6, 7, 8, // appended_at
	}
	got := make([]byte, encodedLogLen(l))
	encodeLog(got, l)
	if !bytes.Equal(got, want) {
		t.Errorf("encodeLog: got %x, want %x", got, want)
	}
}

// FuzzDecodeLog checks that decodeLog never panics and that whatever it
// accepts re-encodes to the same bytes.
func FuzzDecodeLog(f *testing.F) {
	for _, l := range []*raft.Log{{Index: 1}, mkLog(7, 3), {Index: 9, Data: make([]byte, 300)}} {
		v := make([]byte, encodedLogLen(l))
		encodeLog(v, l)
		f.Add(v)
	}
	f.Add([]byte{1, 0xfe, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		var l raft.Log
		if err := decodeLog(v, &l); err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("decodeLog: got %v, want %v", err, errCorrupt)
			}
			return
		}
		again := make([]byte, encodedLogLen(&l))
		encodeLog(again, &l)
		if !bytes.Equal(again, v) && !nonCanonicalVarint(v) {
			t.Fatalf("re-encode: got %x, want %x", again, v)
		}
	})
}

// nonCanonicalVarint reports whether v may hold a padded varint (such as
// 0x80 0x00 for 0), which decodes but re-encodes shorter.
func nonCanonicalVarint(v []byte) bool {
	for i := 1; i < len(v); i++ {
		if v[i] == 0 && v[i-1]&0x80 != 0 {
			return true
		}
	}
	return false
}
