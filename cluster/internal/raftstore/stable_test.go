package raftstore

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// TestStableStore checks Set/Get/SetUint64/GetUint64 round trips and
// missing keys on the open store and after a restart.
func TestStableStore(t *testing.T) {
	longKey := []byte(strings.Repeat("k", 4096))
	tests := []struct {
		name string
		set  func(s *Store) error // nil: key never set
		key  []byte
		// want is the Get result; wantU64 the GetUint64 result.
		want       []byte
		wantErr    error
		wantU64    uint64
		wantU64Err bool
	}{
		{
			name:       "bytes",
			set:        func(s *Store) error { return s.Set([]byte("LastVoteCand"), []byte("node-1")) },
			key:        []byte("LastVoteCand"),
			want:       []byte("node-1"),
			wantU64Err: true, // 6 bytes is not a uint64
		},
		{
			name: "overwrite",
			set: func(s *Store) error {
				return errors.Join(s.Set([]byte("k"), []byte("old")), s.Set([]byte("k"), []byte("new")))
			},
			key:        []byte("k"),
			want:       []byte("new"),
			wantU64Err: true,
		},
		{
			name:       "empty value",
			set:        func(s *Store) error { return s.Set([]byte("empty"), nil) },
			key:        []byte("empty"),
			want:       []byte{},
			wantU64Err: true,
		},
		{
			name:       "empty key",
			set:        func(s *Store) error { return s.Set(nil, []byte("v")) },
			key:        []byte{},
			want:       []byte("v"),
			wantU64Err: true,
		},
		{
			name:       "binary key",
			set:        func(s *Store) error { return s.Set([]byte{0, 1, 0xff}, []byte{0}) },
			key:        []byte{0, 1, 0xff},
			want:       []byte{0},
			wantU64Err: true,
		},
		{
			name:       "long key",
			set:        func(s *Store) error { return s.Set(longKey, []byte("v")) },
			key:        longKey,
			want:       []byte("v"),
			wantU64Err: true,
		},
		{
			name:    "uint64",
			set:     func(s *Store) error { return s.SetUint64([]byte("CurrentTerm"), 42) },
			key:     []byte("CurrentTerm"),
			want:    []byte{0, 0, 0, 0, 0, 0, 0, 42},
			wantU64: 42,
		},
		{
			name:    "uint64 zero",
			set:     func(s *Store) error { return s.SetUint64([]byte("LastVoteTerm"), 0) },
			key:     []byte("LastVoteTerm"),
			want:    make([]byte, 8),
			wantU64: 0,
		},
		{
			name:    "uint64 max",
			set:     func(s *Store) error { return s.SetUint64([]byte("max"), math.MaxUint64) },
			key:     []byte("max"),
			want:    bytes.Repeat([]byte{0xff}, 8),
			wantU64: math.MaxUint64,
		},
		{
			name: "uint64 overwritten by Set (shared key space)",
			set: func(s *Store) error {
				return errors.Join(s.SetUint64([]byte("x"), 1), s.Set([]byte("x"), []byte("abcdefgh")))
			},
			key:     []byte("x"),
			want:    []byte("abcdefgh"),
			wantU64: 0x6162636465666768,
		},
		{
			name:       "missing key",
			key:        []byte("CurrentTerm"),
			wantErr:    ErrKeyNotFound,
			wantU64Err: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, nil)
			s := openStore(t, cfg)
			if tc.set != nil {
				if err := tc.set(s); err != nil {
					t.Fatalf("set: %v", err)
				}
			}
			check := func(t *testing.T, s *Store) {
				got, err := s.Get(tc.key)
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("Get: got error %v, want %v", err, tc.wantErr)
				}
				if !bytes.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
					t.Errorf("Get: got %#v, want %#v", got, tc.want)
				}
				u, err := s.GetUint64(tc.key)
				if (err != nil) != tc.wantU64Err {
					t.Errorf("GetUint64: got error %v, want error %v", err, tc.wantU64Err)
				}
				if u != tc.wantU64 && !tc.wantU64Err {
					t.Errorf("GetUint64: got %d, want %d", u, tc.wantU64)
				}
				if tc.wantU64Err && u != 0 {
					t.Errorf("GetUint64 with error: got %d, want 0", u)
				}
				// Stable keys never show up in the log.
				if last, _ := s.LastIndex(); last != 0 {
					t.Errorf("LastIndex: got %d, want 0", last)
				}
			}
			t.Run("open", func(t *testing.T) { check(t, s) })
			s = reopen(t, s, cfg)
			t.Run("restart", func(t *testing.T) { check(t, s) })
		})
	}
}

// TestMissingKeyMatchesRaft checks the exact error raft expects for a fresh
// node: raft compares err.Error() with "not found" (api.go, raft.go), like
// raft-boltdb's ErrKeyNotFound, and GetUint64 returns 0 with it.
func TestMissingKeyMatchesRaft(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	if _, err := s.Get([]byte("LastVoteCand")); err == nil || err.Error() != "not found" {
		t.Errorf("Get: got %v, want \"not found\"", err)
	}
	u, err := s.GetUint64([]byte("CurrentTerm"))
	if err == nil || err.Error() != "not found" || u != 0 {
		t.Errorf("GetUint64: got %d, %v, want 0, \"not found\"", u, err)
	}
	ok, err := raft.HasExistingState(s, s, raft.NewInmemSnapshotStore())
	if err != nil || ok {
		t.Errorf("HasExistingState on a new store: got %v, %v, want false, nil", ok, err)
	}
}

// TestGetReturnsCopy checks that the caller owns Get's result.
func TestGetReturnsCopy(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	val := []byte("value")
	if err := s.Set([]byte("k"), val); err != nil {
		t.Fatal(err)
	}
	val[0] = 'X' // the store copied it
	got, err := s.Get([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	got[0] = 'Y'
	again, err := s.Get([]byte("k"))
	if err != nil || string(again) != "value" {
		t.Errorf("Get: got %q, %v, want \"value\"", again, err)
	}
}
