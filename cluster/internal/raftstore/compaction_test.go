package raftstore

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// inLogSpace reports whether k is a log key.
func inLogSpace(k []byte) bool {
	return bytes.Compare(k, logLower) >= 0 && bytes.Compare(k, logUpper) < 0
}

// appendTerms writes what raft writes over terms elections: the new term
// and vote in the stable store, then perTerm entries of size random bytes
// each, and flushes the memtable after every term.
func appendTerms(t *testing.T, s *Store, terms, perTerm uint64, size int) {
	t.Helper()
	rng := rand.NewChaCha8([32]byte{7})
	for term := uint64(1); term <= terms; term++ {
		if err := s.SetUint64([]byte("CurrentTerm"), term); err != nil {
			t.Fatal(err)
		}
		if err := s.Set([]byte("LastVoteCand"), fmt.Appendf(nil, "node-%d", term%3)); err != nil {
			t.Fatal(err)
		}
		if err := s.StoreLogs(randomLogs(rng, (term-1)*perTerm+1, term*perTerm, term, size)); err != nil {
			t.Fatal(err)
		}
		if err := s.db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTablesKeepLogApart checks that no table Pebble writes holds both log
// entries and other keys, though every memtable here mixes them: raft
// writes its term and vote between appends.
func TestTablesKeepLogApart(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	appendTerms(t, s, 4, 100, 64)
	levels, err := s.db.SSTables()
	if err != nil {
		t.Fatal(err)
	}
	logTables, otherTables := 0, 0
	for level, tables := range levels {
		for _, ti := range tables {
			lo, hi := ti.Smallest.UserKey, ti.Largest.UserKey
			overlaps := bytes.Compare(lo, logUpper) < 0 && bytes.Compare(hi, logLower) >= 0
			inside := inLogSpace(lo) && inLogSpace(hi)
			switch {
			case inside:
				logTables++
			case overlaps:
				t.Errorf("L%d table %s spans %x..%x, across a bound of the log key space", level, ti.FileNum, lo, hi)
			default:
				otherTables++
			}
		}
	}
	if logTables == 0 || otherTables == 0 {
		t.Errorf("tables: %d of log entries and %d of other keys, want some of each", logTables, otherTables)
	}
}
