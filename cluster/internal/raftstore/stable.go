package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// ErrKeyNotFound is returned by Get and GetUint64 for a key that was never
// set. Its text is exactly "not found", without the usual package prefix,
// and it is returned unwrapped: hashicorp/raft (NewRaft, HasExistingState,
// the vote restore) recognises a missing key only by
// err.Error() == "not found", as raft-boltdb and raft's InmemStore return.
var ErrKeyNotFound = errors.New("not found")

// Set stores val under key, synced. The store copies both slices.
func (s *Store) Set(key, val []byte) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	// Sync: raft keeps its current term and vote here; losing them could
	// let a node vote twice in one term.
	if err := s.db.Set(stableKey(key), val, pebble.Sync); err != nil {
		return fmt.Errorf("set raft stable key %q: %w", key, err)
	}
	return nil
}

// Get returns a copy of the value under key, or ErrKeyNotFound. A value
// set empty is returned as a non-nil empty slice.
func (s *Store) Get(key []byte) ([]byte, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	v, closer, err := s.db.Get(stableKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get raft stable key %q: %w", key, err)
	}
	out := append(make([]byte, 0, len(v)), v...)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("get raft stable key %q: %w", key, err)
	}
	return out, nil
}

// SetUint64 stores val under key as 8 bytes big-endian, synced. Set and
// SetUint64 share one key space.
func (s *Store) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns the value SetUint64 stored under key. For a key that was
// never set it returns 0 and ErrKeyNotFound, as raft-boltdb does; raft
// treats that as a fresh node. A value that is not 8 bytes long is an error.
func (s *Store) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raftstore: stable key %q holds %d bytes, not a uint64", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
